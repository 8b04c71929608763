/* Seatserver web page: the search box in the top bar.
 *
 * Typing asks GET /api/v1/search/autocomplete (debounced) and lists titles, genres, theaters
 * and cities; Enter (or a suggestion) asks GET /api/v1/search and shows the "understood as"
 * chips and the movies with their next shows. A show opens its seat map as the page does
 * (#/show/{id}); the panel closes when the page goes elsewhere.
 *
 * Plain script, self-contained: it needs only the markup in index.html (#search-form,
 * #search-input, #search-suggestions, #search-results).
 */
"use strict";

(() => {
  const API = "/api/v1";
  const DEBOUNCE_MS = 150;
  const LOCALE = navigator.language || "en-US";
  const KIND_NAME = { genre: "Genre", movie: "Title", time: "When", at_time: "At",
    city: "City", theater: "Theater", near: "Near", price: "Up to", language: "Language",
    format: "Format", seat_category: "Seats", family: "Family", seat_count: "Seats for",
    free_text: "About" };

  const form = document.getElementById("search-form");
  const input = document.getElementById("search-input");
  const list = document.getElementById("search-suggestions");
  const panel = document.getElementById("search-results");
  if (!form || !input || !list || !panel) return;

  let timer = null;
  let asked = 0; // the latest request; older answers are dropped
  let options = [];
  let active = -1;

  const el = (tag, attrs = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    for (const child of children) node.append(child);
    return node;
  };

  async function get(path, params) {
    const url = `${API}${path}?${new URLSearchParams(params)}`;
    const resp = await fetch(url, { headers: { Accept: "application/json" } });
    const body = await resp.json().catch(() => ({}));
    if (!resp.ok) throw new Error(body.error ? body.error.message : `HTTP ${resp.status}`);
    return body;
  }

  function cityParams() {
    const city = Number(localStorage.getItem("seatserver.search.city") || 0);
    return city ? { city_id: String(city) } : {};
  }

  // -- suggestions ------------------------------------------------------------------------------

  function closeList() {
    list.hidden = true;
    list.replaceChildren();
    input.setAttribute("aria-expanded", "false");
    options = [];
    active = -1;
  }

  function showList(found) {
    options = found;
    active = -1;
    list.replaceChildren(...found.map((s, i) => {
      const li = el("li", { role: "option", id: `search-option-${i}`, "aria-selected": "false" },
        el("span", { class: "search-kind" }, KIND_NAME[s.kind] || s.kind), s.text);
      li.addEventListener("mousedown", (event) => { event.preventDefault(); pick(i); });
      return li;
    }));
    list.hidden = found.length === 0;
    input.setAttribute("aria-expanded", String(found.length > 0));
  }

  function mark(index) {
    active = index;
    [...list.children].forEach((li, i) => li.setAttribute("aria-selected", String(i === index)));
    if (index >= 0) input.setAttribute("aria-activedescendant", `search-option-${index}`);
    else input.removeAttribute("aria-activedescendant");
  }

  function pick(index) {
    const chosen = options[index];
    if (!chosen) return;
    input.value = chosen.kind === "genre" ? `${chosen.text} movies` : chosen.text;
    closeList();
    search(input.value);
  }

  async function suggest() {
    const q = input.value.trim();
    if (!q) { closeList(); return; }
    const mine = ++asked;
    try {
      const { suggestions } = await get("/search/autocomplete", { q, ...cityParams() });
      if (mine === asked && document.activeElement === input) showList(suggestions);
    } catch (_) {
      if (mine === asked) closeList();
    }
  }

  // -- results ----------------------------------------------------------------------------------

  function when(iso) {
    const at = new Date(iso);
    return at.toLocaleString(LOCALE, { weekday: "short", hour: "numeric", minute: "2-digit",
      timeZone: offsetZone(iso) });
  }

  function offsetZone(iso) {
    // The show's own local time: its offset as a fixed zone (Etc/GMT signs are reversed).
    const m = /([+-])(\d{2}):(\d{2})$/.exec(iso);
    if (!m || m[3] !== "00") return undefined;
    const hours = Number(m[2]);
    return hours === 0 ? "UTC" : `Etc/GMT${m[1] === "+" ? "-" : "+"}${hours}`;
  }

  function chip(u) {
    const label = KIND_NAME[u.kind] || u.kind;
    let value = u.name || u.title || u.value;
    if (u.kind === "price") value = `$${(u.value / 100).toFixed(2)}`;
    if (u.kind === "time" || u.kind === "near" || u.kind === "family") value = u.text;
    const applied = !u.note;
    return el("li", { class: "search-chip", "data-applied": String(applied),
      title: u.note || `read from “${u.text}”` }, `${label}: ${value}`);
  }

  function movie(m) {
    const shows = m.shows.map((s) => {
      const button = el("button", { type: "button", class: "button button-quiet",
        "data-show-id": String(s.show_id) }, `${when(s.starts_at)} · ${s.theater_name}`);
      button.addEventListener("click", () => {
        panel.hidden = true;
        location.hash = `#/show/${s.show_id}`;
      });
      return el("li", {}, button);
    });
    return el("article", { class: "search-movie", "data-movie-id": String(m.id) },
      el("h3", {}, m.title),
      el("p", { class: "search-meta" },
        `${m.genres.join(", ")} · ${m.certificate} · ${m.language}`),
      el("ul", { class: "search-shows" }, ...shows));
  }

  async function search(q) {
    const mine = ++asked;
    panel.hidden = false;
    panel.replaceChildren(el("p", {}, "Searching…"));
    try {
      const body = await get("/search", { q, ...cityParams() });
      if (mine !== asked) return;
      const heading = el("h2", { id: "search-heading", tabindex: "-1" },
        body.results.length ? `Results for “${q}”` : `Nothing found for “${q}”`);
      const close = el("button", { type: "button", class: "button button-quiet" }, "Close");
      close.addEventListener("click", () => { panel.hidden = true; });
      panel.replaceChildren(heading,
        el("p", { class: "search-meta" }, "Understood as:"),
        el("ul", { class: "search-chips" }, ...body.understood.map(chip)),
        ...body.results.map(movie), close);
    } catch (err) {
      if (mine === asked) panel.replaceChildren(el("p", { role: "alert" }, String(err.message)));
    }
  }

  // -- events -----------------------------------------------------------------------------------

  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(suggest, DEBOUNCE_MS);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown" && options.length) {
      event.preventDefault();
      mark((active + 1) % options.length);
    } else if (event.key === "ArrowUp" && options.length) {
      event.preventDefault();
      mark((active - 1 + options.length) % options.length);
    } else if (event.key === "Escape") {
      closeList();
    } else if (event.key === "Enter" && active >= 0) {
      event.preventDefault();
      pick(active);
    }
  });
  input.addEventListener("blur", () => setTimeout(closeList, 100));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearTimeout(timer);
    closeList();
    const q = input.value.trim();
    if (q) search(q);
  });
  window.addEventListener("hashchange", () => {
    if (!location.hash.startsWith("#/show/")) return;
    panel.hidden = true;
  });
})();
