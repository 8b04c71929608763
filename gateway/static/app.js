/* Seatserver web page: city → movie → show → the live seat map, with holds, payment and
 * "My bookings".
 *
 * Plain script, no build step, no network but this origin and, for card tokens only, the local
 * payment provider the server names (card data never reaches this origin). Sections, top to
 * bottom: helpers (DOM, money, time) · session and the API client · messages · account panel ·
 * router and the browsing views · the show page (holds) · paying for a hold · my bookings ·
 * seat map drawing and keyboard · the live feed · the waiting room's hooks (queue.js, loaded
 * first, holds the flash sales' waiting room)
 *
 * The seat map follows the server's protocol: a snapshot on connect and after a resync, then
 * deltas in version order; a gap in versions asks for a resync and waits for the next snapshot.
 */
"use strict";

(() => {
  const API = "/api/v1";
  const LOCALE = navigator.language || "en-US";
  const MAX_SEATS = 10; // the most seats one hold may take (the API's limit)
  const SESSION_KEY = "seatserver.session";
  const TRAIL_KEY = "seatserver.trail";
  const HOLD_KEY = "seatserver.hold.";
  const DEVICE_KEY = "seatserver.device";
  const CATEGORY_ORDER = ["standard", "premium", "recliner", "wheelchair", "companion"];
  const CATEGORY_NAME = {
    standard: "Standard",
    premium: "Premium",
    recliner: "Recliner",
    wheelchair: "Wheelchair space",
    companion: "Companion seat",
  };
  const STATE_TEXT = {
    available: "available",
    selected: "selected",
    mine: "held for you",
    held: "held by someone else",
    booked: "booked",
    blocked: "not for sale",
  };
  const STATE_LEGEND = [
    ["available", "Available"],
    ["selected", "Selected by you"],
    ["mine", "Held for you"],
    ["held", "Held by others"],
    ["booked", "Booked"],
    ["blocked", "Not for sale"],
  ];
  const FRIENDLY = {
    seat_unavailable: "Those seats were just taken. Please choose others.",
    no_seats_available:
      "Not enough seats are left together in that category. Try fewer seats or another category.",
    hold_expired: "Your hold expired, so the seats are back on sale.",
    hold_not_found: "That hold has ended.",
    show_not_on_sale: "Tickets for this show are not on sale right now.",
    invalid_credentials: "Wrong email or password.",
    already_exists: "There is already an account with this email. Log in instead.",
    unauthorized: "Please log in first.",
    token_reused: "Your session ended. Please log in again.",
    token_revoked: "Your session ended. Please log in again.",
    invalid_token: "Your session ended. Please log in again.",
    show_unavailable: "This show is busy right now. Please try again in a moment.",
    host_unavailable: "This show is busy right now. Please try again in a moment.",
    service_unavailable: "The service is busy right now. Please try again in a moment.",
    not_found: "We could not find that. It may have been removed.",
    show_not_found: "We could not find that show. It may have been removed.",
    network_error: "Cannot reach the server. Check your connection and try again.",
    payments_disabled: "Payments are not set up on this server yet.",
    payment_provider_unavailable:
      "The payment service is unavailable right now. Your seats are still held.",
    too_many_payment_attempts:
      "This hold has used all its payment attempts, so its seats were released.",
    checkout_closed: "These seats can no longer be paid for: the show is closed.",
    checkout_refused: "We cannot take this payment. If you think this is wrong, contact support "
      + "and give them the reference shown.",
    invalid_credentials: "That password is not right.",
    payment_not_open: "This payment can no longer be made. Press Pay to start again.",
    settlement_pending: "Your booking is being finished. This takes a moment.",
    cancellation_closed: "The show has started, so this booking can no longer be cancelled.",
    booking_not_found: "We could not find that booking.",
  };

  // -- helpers ---------------------------------------------------------------------------------

  const $ = (selector, root = document) => root.querySelector(selector);
  const SVG_NS = "http://www.w3.org/2000/svg";

  function build(node, attrs, children) {
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.setAttribute("class", value);
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }
  const h = (tag, attrs, ...children) => build(document.createElement(tag), attrs, children);
  const svg = (tag, attrs, ...children) =>
    build(document.createElementNS(SVG_NS, tag), attrs, children);

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  /** One Idempotency-Key per user action; its automatic retries reuse it. */
  function newKey() {
    if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  const moneyFormats = new Map();
  /** Money in minor units (cents) with its ISO currency, as the reader's locale writes it. */
  function formatMoney(minor, currency) {
    if (!moneyFormats.has(currency)) {
      let format = null;
      try {
        format = new Intl.NumberFormat(LOCALE, { style: "currency", currency });
      } catch {
        format = null;
      }
      moneyFormats.set(currency, format);
    }
    const format = moneyFormats.get(currency);
    if (!format) return `${(minor / 100).toFixed(2)} ${currency}`;
    return format.format(minor / 10 ** format.resolvedOptions().maximumFractionDigits);
  }

  function isoDay(date) {
    const pad = (n) => String(n).padStart(2, "0");
    return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
  }

  /** The next seven days from today (the reader's calendar), for the day picker. */
  function nextDays() {
    const today = new Date();
    return Array.from({ length: 7 }, (_, i) => {
      const day = new Date(today.getFullYear(), today.getMonth(), today.getDate() + i);
      const iso = isoDay(day);
      const long = new Intl.DateTimeFormat(LOCALE, {
        weekday: "long", month: "long", day: "numeric",
      }).format(day);
      const name = i === 0 ? "Today" : i === 1 ? "Tomorrow"
        : new Intl.DateTimeFormat(LOCALE, { weekday: "short" }).format(day);
      const short = new Intl.DateTimeFormat(LOCALE, { month: "short", day: "numeric" }).format(day);
      return { iso, name, short, long };
    });
  }

  function validDay(text) {
    return /^\d{4}-\d{2}-\d{2}$/.test(text || "") && !Number.isNaN(Date.parse(text)) ? text : null;
  }

  function longDay(iso) {
    const [y, m, d] = iso.split("-").map(Number);
    return new Intl.DateTimeFormat(LOCALE, {
      weekday: "long", month: "long", day: "numeric", timeZone: "UTC",
    }).format(new Date(Date.UTC(y, m - 1, d)));
  }

  /** A show time as the theater's clock reads it: through its zone, else the ISO offset. */
  function showTime(iso, timeZone, withDay = false) {
    const options = withDay
      ? { weekday: "short", month: "short", day: "numeric", hour: "numeric", minute: "2-digit" }
      : { hour: "numeric", minute: "2-digit" };
    if (timeZone) {
      try {
        return new Intl.DateTimeFormat(LOCALE, { ...options, timeZone }).format(new Date(iso));
      } catch {
        /* an unknown zone: fall back to the wall clock in the string */
      }
    }
    const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(iso || "");
    if (!m) return iso || "";
    const wall = new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5]));
    return new Intl.DateTimeFormat(LOCALE, { ...options, timeZone: "UTC" }).format(wall);
  }

  function runtime(minutes) {
    const hours = Math.floor(minutes / 60);
    const rest = minutes % 60;
    return hours ? `${hours} h ${String(rest).padStart(2, "0")} min` : `${rest} min`;
  }

  function mmss(ms) {
    const total = Math.max(0, Math.ceil(ms / 1000));
    return `${String(Math.floor(total / 60)).padStart(2, "0")}:${String(total % 60).padStart(2, "0")}`;
  }

  function joinSeats(labels) {
    return [...labels].sort(compareLabels).join(", ");
  }

  function compareLabels(a, b) {
    return a.localeCompare(b, "en", { numeric: true });
  }

  function readJson(storage, key) {
    try {
      return JSON.parse(storage.getItem(key) || "null");
    } catch {
      return null;
    }
  }

  // -- session and the API client ----------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, code, message, details, retryAfter = null) {
      super(message);
      this.status = status;
      this.code = code;
      this.details = details || {};
      this.retryAfter = retryAfter; // seconds, from a Retry-After header
    }
  }

  const session = {
    get() {
      return readJson(sessionStorage, SESSION_KEY);
    },
    set(body) {
      sessionStorage.setItem(SESSION_KEY, JSON.stringify({
        user: body.user,
        access_token: body.access_token,
        refresh_token: body.refresh_token,
      }));
      account.render();
    },
    clear() {
      sessionStorage.removeItem(SESSION_KEY);
      account.render();
    },
  };

  let clockSkewMs = 0; // server clock minus ours, from the Date header and heartbeats
  let refreshing = null;

  function refreshTokens() {
    if (!refreshing) {
      refreshing = (async () => {
        const tokens = session.get();
        if (!tokens) throw new ApiError(401, "unauthorized", FRIENDLY.unauthorized);
        try {
          const { data } = await api("POST", "/auth/refresh", {
            body: { refresh_token: tokens.refresh_token },
          });
          session.set(data);
        } catch (err) {
          session.clear();
          throw new ApiError(401, "session_ended", "Your session ended. Please log in again.");
        }
      })().finally(() => {
        refreshing = null;
      });
    }
    return refreshing;
  }

  /** One call to the API: JSON in and out, the error envelope turned into an ApiError.
   * ``auth`` sends the access token (refreshed once on ``token_expired``); state-changing
   * calls carry an Idempotency-Key (``key``, else a new one), so their retries (network loss,
   * 503) are safe. ``retryBusy: false`` leaves a 503 to the caller, with ``retryAfter``;
   * ``headers`` are sent as well (a flash sale's Admission-Token). */
  // This browser's id (kept in its storage): the fraud check counts accounts and holds per device.
  function deviceId() {
    let id = localStorage.getItem(DEVICE_KEY);
    if (!id) {
      id = newKey();
      localStorage.setItem(DEVICE_KEY, id);
    }
    return id;
  }

  async function api(method, path, {
    body, auth = false, key: given, retryBusy = true, headers: extra = {},
  } = {}) {
    const changes = method !== "GET";
    const key = changes && !path.startsWith("/auth/") ? given || newKey() : null;
    const retryable = !changes || key !== null;
    let refreshed = false;
    for (let attempt = 0; ; attempt += 1) {
      const headers = { ...extra, Accept: "application/json", "X-Device-Id": deviceId() };
      if (body !== undefined) headers["Content-Type"] = "application/json";
      if (key) headers["Idempotency-Key"] = key;
      const tokens = auth ? session.get() : null;
      if (auth && !tokens) throw new ApiError(401, "unauthorized", FRIENDLY.unauthorized);
      if (tokens) headers.Authorization = `Bearer ${tokens.access_token}`;
      let response;
      try {
        response = await fetch(API + path, {
          method,
          headers,
          body: body === undefined ? undefined : JSON.stringify(body),
          credentials: "same-origin",
          cache: "no-store",
        });
      } catch {
        if (retryable && attempt < 2) {
          await sleep(400 * 2 ** attempt);
          continue;
        }
        throw new ApiError(0, "network_error", FRIENDLY.network_error);
      }
      const date = Date.parse(response.headers.get("Date") || "");
      if (!Number.isNaN(date)) clockSkewMs = date - Date.now();
      const data = response.status === 204 ? null : await response.json().catch(() => null);
      if (response.ok && response.status !== 202) return { data, response };
      const error = (data && data.error) || {
        code: `http_${response.status}`,
        message: response.statusText || "Something went wrong.",
        details: {},
      };
      if (response.status === 401 && error.code === "token_expired" && auth && !refreshed) {
        refreshed = true;
        await refreshTokens();
        continue;
      }
      const after = Number(response.headers.get("Retry-After")) || null;
      const inProgress = error.code === "idempotency_request_in_progress";
      const busy = inProgress
        || (retryBusy && (response.status === 503 || response.status === 202));
      if (busy && retryable && attempt < 3) {
        await sleep(Math.min(after || 1, 5) * 1000);
        continue;
      }
      throw new ApiError(response.status, error.code, error.message, error.details, after);
    }
  }

  // -- messages ----------------------------------------------------------------------------------

  let messageTimer = null;

  /** A status line read out by screen readers; errors stay longer. */
  function say(text, kind = "info") {
    const box = $("#message");
    clearTimeout(messageTimer);
    box.dataset.kind = kind;
    box.textContent = text;
    box.classList.toggle("message-shown", Boolean(text));
    if (text) messageTimer = setTimeout(() => say(""), kind === "error" ? 12000 : 7000);
  }

  function explain(err) {
    if (!(err instanceof ApiError)) return "Something went wrong on this page.";
    if (FRIENDLY[err.code]) return FRIENDLY[err.code];
    if (err.code === "validation_failed" && Array.isArray(err.details.errors)) {
      const first = err.details.errors[0];
      if (first) {
        const field = (first.loc || []).slice(1).join(" ");
        return `${field ? `${field}: ` : ""}${first.msg}`;
      }
    }
    return err.message || "Something went wrong.";
  }

  // -- account panel ---------------------------------------------------------------------------

  const account = {
    init() {
      $("#login-form").addEventListener("submit", (event) => {
        event.preventDefault();
        this.submit("/auth/login", {
          email: $("#login-email").value.trim(),
          password: $("#login-password").value,
        }, $("#login-submit"));
      });
      $("#register-form").addEventListener("submit", (event) => {
        event.preventDefault();
        this.submit("/auth/register", {
          email: $("#register-email").value.trim(),
          password: $("#register-password").value,
          display_name: $("#register-name").value.trim(),
        }, $("#register-submit"));
      });
      $("#logout-button").addEventListener("click", () => this.logout());
      $("#account-panel").addEventListener("keydown", (event) => {
        if (event.key === "Escape") this.close(true);
      });
      this.render();
    },

    async submit(path, body, button) {
      if (!body.email || !body.password) {
        say("Enter your email and password.", "error");
        return;
      }
      button.disabled = true;
      try {
        const { data } = await api("POST", path, { body });
        session.set(data);
        $("#login-password").value = "";
        $("#register-password").value = "";
        this.close(false);
        say(`Signed in as ${data.user.display_name || data.user.email}.`, "success");
        $("#logout-button").focus();
      } catch (err) {
        say(explain(err), "error");
      } finally {
        button.disabled = false;
      }
    },

    async logout() {
      const tokens = session.get();
      if (tokens) {
        try {
          await api("POST", "/auth/logout", {
            body: { refresh_token: tokens.refresh_token }, auth: true,
          });
        } catch {
          /* the tokens are dropped here either way */
        }
      }
      session.clear();
      say("You are logged out.");
      $("#account-panel summary").focus();
    },

    open() {
      $("#account-panel").open = true;
      $("#login-email").focus();
    },

    close(returnFocus) {
      $("#account-panel").open = false;
      if (returnFocus) $("#account-panel summary").focus();
    },

    render() {
      const tokens = session.get();
      $("#account-signed-in").hidden = !tokens;
      $("#account-panel").hidden = Boolean(tokens);
      $("#account-name").textContent = tokens ? tokens.user.display_name || tokens.user.email : "";
      if (page && page.onAccountChange) page.onAccountChange();
      if (chat) chat.accountChanged();
    },
  };

  // -- router and the browsing views -------------------------------------------------------------

  let page = null; // the current view; its destroy() ends timers and sockets
  let routeSeq = 0;
  let firstRoute = true;
  let citiesCache = null;

  function parseRoute() {
    let raw = location.hash.replace(/^#/, "") || "/";
    try {
      raw = decodeURIComponent(raw);
    } catch {
      /* a malformed escape: read it as it is */
    }
    const [path, search] = raw.split("?");
    const query = new URLSearchParams(search || "");
    const parts = path.split("/").filter(Boolean);
    const id = (text) => (/^[1-9]\d{0,18}$/.test(text || "") ? text : null); // kept as text: ids may pass 2^53
    const date = validDay(query.get("date")) || isoDay(new Date());
    if (parts[0] === "show" && id(parts[1])) return { name: "show", showId: id(parts[1]) };
    if (parts[0] === "bookings" && parts.length === 1) return { name: "bookings" };
    if (parts[0] === "city" && id(parts[1])) {
      if (parts[2] === "movie" && id(parts[3])) {
        return { name: "movie", cityId: id(parts[1]), movieId: id(parts[3]), date };
      }
      return { name: "city", cityId: id(parts[1]), date };
    }
    return { name: "home" };
  }

  async function route() {
    const seq = ++routeSeq;
    if (page && page.destroy) page.destroy();
    page = null;
    const where = parseRoute();
    const ctx = { stale: () => seq !== routeSeq, focus: !firstRoute };
    firstRoute = false;
    const view = $("#view");
    view.setAttribute("aria-busy", "true");
    try {
      if (where.name === "show") page = await showPage(where, ctx);
      else if (where.name === "bookings") page = await bookingsPage(ctx);
      else if (where.name === "movie") await moviePage(where, ctx);
      else if (where.name === "city") await cityPage(where, ctx);
      else page = await homePage(ctx);
    } catch (err) {
      if (ctx.stale()) return;
      crumbs([{ text: "All cities", href: "#/" }]);
      view.replaceChildren(h("div", { class: "error-box" },
        h("h1", { tabindex: "-1" }, "We could not load this page"),
        h("p", { text: explain(err) }),
        h("button", { type: "button", class: "button", onclick: () => route() }, "Try again")));
      document.title = "Error · Seatserver";
    } finally {
      if (!ctx.stale()) view.removeAttribute("aria-busy");
    }
  }

  function mount(ctx, title, ...nodes) {
    if (ctx.stale()) return false;
    document.title = `${title} · Seatserver`;
    $("#view").replaceChildren(...nodes);
    const heading = $("#view h1");
    if (ctx.focus && heading) heading.focus({ preventScroll: false });
    return true;
  }

  function crumbs(items) {
    const list = h("ol", null, items.map((item, i) => h("li", null,
      i === items.length - 1 && !item.href
        ? h("span", { "aria-current": "page" }, item.text)
        : h("a", { href: item.href }, item.text))));
    $("#breadcrumbs").replaceChildren(items.length ? list : "");
  }

  async function cities() {
    if (!citiesCache) citiesCache = (await api("GET", "/cities")).data.cities;
    return citiesCache;
  }

  async function cityName(cityId) {
    const found = (await cities()).find((c) => String(c.id) === cityId);
    if (!found) throw new ApiError(404, "not_found", "We do not know that city.");
    return found.name;
  }

  async function homePage(ctx) {
    const all = await cities();
    crumbs([]);
    const trail = readJson(sessionStorage, TRAIL_KEY);
    const movies = home && all.length ? home.view(all) : null; // home.js: what to see next
    mount(ctx, "Movie tickets",
      h("h1", { tabindex: "-1" }, "Where are you watching?"),
      all.length === 0
        ? h("p", { class: "empty" }, "No cities have theaters yet.")
        : h("ul", { class: "city-list" }, all.map((city) => h("li", null,
          h("a", {
            class: "city-card",
            href: `#/city/${city.id}`,
            "aria-describedby": trail && trail.cityId === String(city.id) ? "last-city" : null,
          },
          h("span", { class: "city-name" }, city.name),
          h("span", { class: "city-country" }, city.country),
          trail && trail.cityId === String(city.id)
            ? h("span", { class: "tag", id: "last-city" }, "Last visited") : null)))),
      ...(movies ? [movies.node] : []));
    return movies;
  }

  function dayPicker(baseHref, selected) {
    return h("nav", { class: "day-picker", "aria-label": "Choose a day" },
      h("ul", null, nextDays().map((day) => h("li", null,
        h("a", {
          class: "day-chip",
          href: `${baseHref}?date=${day.iso}`,
          "aria-current": day.iso === selected ? "date" : null,
          "aria-label": `${day.name === "Today" || day.name === "Tomorrow" ? `${day.name}, ` : ""}${day.long}`,
        },
        h("span", { class: "day-name" }, day.name),
        h("span", { class: "day-date" }, day.short))))));
  }

  // A click on a recommended movie, for the recommendations' click-through; never waited for.
  function reportClick(movieId, source) {
    api("POST", "/recommendations/clicks", {
      body: { movie_id: movieId, source }, auth: Boolean(session.get()), retryBusy: false,
    }).catch(() => {});
  }

  // Movies for this customer (or what sells here, for a visitor), this week; never in the way:
  // the page shows without it when it is slow or fails.
  async function recommendedStrip(cityId, date) {
    try {
      const { data } = await api("GET", `/recommendations?city_id=${cityId}&limit=6`,
        { auth: Boolean(session.get()) });
      if (!data.items.length) return null;
      const heading = data.source === "model" ? "Recommended for you" : "Popular this week";
      return h("section", { class: "recommended", "aria-labelledby": "recommended-heading",
        "data-source": data.source },
      h("h2", { id: "recommended-heading" }, heading),
      h("ul", { class: "recommended-list" }, data.items.map((item) => h("li", null,
        h("a", { href: `#/city/${cityId}/movie/${item.movie_id}?date=${date}`,
          onclick: () => reportClick(item.movie_id, data.source) }, item.title),
        h("span", { class: "movie-meta" }, item.genres.join(", "))))));
    } catch (err) {
      return null;
    }
  }

  async function cityPage(where, ctx) {
    const [name, { data }, recommended] = await Promise.all([
      cityName(where.cityId),
      api("GET", `/cities/${where.cityId}/movies?date=${where.date}`),
      recommendedStrip(where.cityId, where.date),
    ]);
    crumbs([{ text: "All cities", href: "#/" }, { text: name }]);
    const movies = data.movies;
    mount(ctx, `Movies in ${name}`,
      h("h1", { tabindex: "-1" }, `Movies in ${name}`),
      recommended,
      dayPicker(`#/city/${where.cityId}`, where.date),
      h("h2", { class: "day-heading" }, longDay(where.date)),
      movies.length === 0
        ? h("p", { class: "empty" }, "Nothing is playing on this day. Try another day.")
        : h("ul", { class: "movie-list" }, movies.map((movie) => h("li", { class: "movie-card" },
          h("h3", null, h("a", {
            href: `#/city/${where.cityId}/movie/${movie.id}?date=${where.date}`,
          }, movie.title)),
          h("p", { class: "movie-meta" },
            [movie.certificate, runtime(movie.runtime_min), movie.language.toUpperCase(),
              movie.genres.join(", ")].filter(Boolean).join(" · ")),
          h("p", { class: "movie-count" },
            `${movie.show_count} ${movie.show_count === 1 ? "showing" : "showings"}`)))));
  }

  async function moviePage(where, ctx) {
    const base = `/cities/${where.cityId}`;
    const [name, movies, { data }] = await Promise.all([
      cityName(where.cityId),
      api("GET", `${base}/movies?date=${where.date}`).then((r) => r.data.movies),
      api("GET", `${base}/movies/${where.movieId}/shows?date=${where.date}`),
    ]);
    const movie = movies.find((m) => String(m.id) === where.movieId);
    const title = movie ? movie.title : "Showtimes";
    const cityHref = `#/city/${where.cityId}?date=${where.date}`;
    crumbs([{ text: "All cities", href: "#/" }, { text: name, href: cityHref }, { text: title }]);
    const showIds = data.theaters.flatMap((t) => t.shows.map((s) => String(s.show_id)));
    sessionStorage.setItem(TRAIL_KEY, JSON.stringify({
      cityId: where.cityId, cityName: name, movieId: where.movieId, title,
      date: where.date, showIds,
    }));
    mount(ctx, `${title} in ${name}`,
      h("h1", { tabindex: "-1" }, title),
      movie ? h("p", { class: "movie-meta" },
        [movie.certificate, runtime(movie.runtime_min), movie.genres.join(", ")]
          .filter(Boolean).join(" · ")) : null,
      dayPicker(`#/city/${where.cityId}/movie/${where.movieId}`, where.date),
      h("h2", { class: "day-heading" }, longDay(where.date)),
      data.theaters.length === 0
        ? h("p", { class: "empty" }, "No showings on this day. Try another day.")
        : h("ul", { class: "theater-list" }, data.theaters.map((theater) => h("li", {
          class: "theater-card",
        },
        h("h3", null, theater.theater_name),
        h("ul", { class: "showtimes", "aria-label": `Showtimes at ${theater.theater_name}` },
          theater.shows.map((show) => h("li", null, showtimeLink(show, theater.time_zone))))))));
  }

  function showtimeLink(show, timeZone) {
    const time = showTime(show.starts_at, timeZone);
    const note = { cancelled: "Cancelled", scheduled: "Sale soon", flash_sale: "Flash sale" };
    const inner = [
      h("span", { class: "showtime-time" }, time),
      h("span", { class: "showtime-screen" }, `Screen ${show.screen_name}`),
      note[show.status] ? h("span", { class: "tag" }, note[show.status]) : null,
    ];
    if (show.status === "cancelled") {
      return h("span", { class: "showtime showtime-off", "aria-disabled": "true" }, inner);
    }
    return h("a", { class: "showtime", href: `#/show/${show.show_id}` }, inner);
  }

  // -- the show page ---------------------------------------------------------------------------

  async function showPage(where, ctx) {
    const { data } = await api("GET", `/shows/${where.showId}/seatmap`);
    if (ctx.stale()) return null;
    const trail = readJson(sessionStorage, TRAIL_KEY);
    const time = showTime(data.starts_at, null, true);
    if (trail && trail.showIds && trail.showIds.includes(where.showId)) {
      crumbs([
        { text: "All cities", href: "#/" },
        { text: trail.cityName, href: `#/city/${trail.cityId}?date=${trail.date}` },
        { text: trail.title, href: `#/city/${trail.cityId}/movie/${trail.movieId}?date=${trail.date}` },
        { text: time },
      ]);
    } else {
      crumbs([{ text: "All cities", href: "#/" }, { text: `${data.movie_title}, ${time}` }]);
    }
    if (data.status === "flash_sale" && !queue.admitted(where.showId)) {
      return queue.page(where.showId, data, ctx, `${data.movie_title}, ${time}`);
    }
    const view = new ShowPage(where.showId, data);
    mount(ctx, `${data.movie_title}, ${time}`, view.root);
    view.start();
    return view;
  }

  class ShowPage {
    constructor(showId, seatmap) {
      this.showId = showId;
      this.root = $("#show-template").content.firstElementChild.cloneNode(true);
      this.selected = new Set();
      this.hold = null;
      this.awaitingSnapshot = false;
      this.timers = [];
      this.map = new SeatMapDrawing(this.root.querySelector("#seatmap"), {
        toggle: (label) => this.toggle(label),
        focusSeat: (label) => this.describeFocus(label),
      });
      this.feed = new LiveFeed(showId, {
        snapshot: (msg) => this.onSnapshot(msg),
        delta: (msg) => this.onDelta(msg),
        heartbeat: (msg) => this.onHeartbeat(msg),
        status: (status) => this.setLive(status),
        error: (msg) => say(explain(new ApiError(0, msg.error.code, msg.error.message,
          msg.error.details)), "error"),
      });
      this.load(seatmap);
      this.wire();
      this.payments = new PaymentPanel(this);
    }

    q(selector) {
      return this.root.querySelector(selector);
    }

    // ---- the seat map's data

    load(seatmap) {
      this.info = seatmap;
      this.version = seatmap.version;
      this.states = new Map(Object.entries(seatmap.seats));
      this.q(".show-title").textContent = seatmap.movie_title;
      const meta = [seatmap.theater_name, `Screen ${seatmap.screen_name}`,
        showTime(seatmap.starts_at, null, true)];
      const status = { scheduled: "Not on sale yet", cancelled: "Cancelled",
        flash_sale: "Flash sale" }[seatmap.status];
      this.q(".show-meta").replaceChildren(meta.join(" · "),
        status ? h("span", { class: `tag tag-${seatmap.status}` }, status) : "");
      this.map.draw(seatmap.layout, (seat) => this.describe(seat));
      this.legend();
      this.categories();
      for (const label of this.selected) {
        if (this.states.get(label) !== "available") this.selected.delete(label);
      }
      this.refreshAll();
    }

    // The prices this customer pays (their pricing arm's), signed: the hold is charged them.
    async fetchQuote() {
      if (!session.get()) return;
      try {
        const { data } = await api("GET", `/shows/${this.showId}/quote`, { auth: true });
        this.quote = data;
        this.legend();
        this.categories();
        this.refreshAll();
      } catch (err) {
        this.quote = null; // the price table stands
      }
    }

    quoteToken() {
      const q = this.quote;
      return q && Date.parse(q.expires_at) - Date.now() > 30000 ? q.quote_token : null;
    }

    price(category) {
      const prices = this.quote ? this.quote.prices : this.info.prices;
      const cents = prices[category];
      return cents === undefined ? null : formatMoney(cents, this.info.currency);
    }

    /** What the reader sees for a seat: their own choice first, then the server's state. */
    stateOf(label) {
      if (this.hold && !this.hold.expired && this.hold.seats.includes(label)) return "mine";
      if (this.selected.has(label)) return "selected";
      const seat = this.map.seats.get(label);
      if (seat && seat.outOfService) return "blocked";
      return this.states.get(label) || "blocked";
    }

    describe(seat) {
      const state = this.stateOf(seat.label);
      const price = this.price(seat.category) || "no price";
      const category = (CATEGORY_NAME[seat.category] || seat.category).toLowerCase();
      return {
        state,
        label: `Row ${seat.row}, seat ${seat.number}, ${category}, ${price}, ${STATE_TEXT[state]}`,
      };
    }

    refreshAll() {
      this.map.refresh();
      this.summarise();
    }

    refreshSeats(labels) {
      for (const label of labels) this.map.refreshSeat(label);
      this.summarise();
    }

    legend() {
      const present = new Set([...this.map.seats.values()].map((s) => s.category));
      const cats = CATEGORY_ORDER.filter((c) => present.has(c))
        .concat([...present].filter((c) => !CATEGORY_ORDER.includes(c)));
      this.q("#legend-categories").replaceChildren(...cats.map((category) => h("li", null,
        swatch("available", category),
        h("span", { class: "legend-name" }, CATEGORY_NAME[category] || category),
        h("span", { class: "legend-price" }, this.price(category) || "—"))));
      this.q("#legend-states").replaceChildren(...STATE_LEGEND.map(([state, text]) => h("li", null,
        swatch(state, "standard"), h("span", { class: "legend-name" }, text))));
    }

    categories() {
      const select = this.q("#best-category");
      const previous = select.value;
      const present = new Set([...this.map.seats.values()].map((s) => s.category));
      const options = CATEGORY_ORDER.filter((c) => present.has(c) && c !== "companion"
        && this.info.prices[c] !== undefined);
      select.replaceChildren(...options.map((c) => h("option", { value: c },
        `${CATEGORY_NAME[c]} · ${this.price(c)}`)));
      if (options.includes(previous)) select.value = previous;
      else if (options.includes("standard")) select.value = "standard";
    }

    // ---- controls

    wire() {
      this.q("#hold-button").addEventListener("click", () => this.holdSelected());
      this.q("#clear-button").addEventListener("click", () => {
        const labels = [...this.selected];
        this.selected.clear();
        this.refreshSeats(labels);
      });
      this.q("#best-form").addEventListener("submit", (event) => {
        event.preventDefault();
        this.holdBest();
      });
      this.q("#release-button").addEventListener("click", () => this.release());
      this.q("#extend-button").addEventListener("click", () => this.extend());
      this.q("#pay-button").addEventListener("click", () => this.payments.open());
    }

    start() {
      this.admission = queue.attach(this); // a flash sale's time left to hold seats
      this.feed.start();
      this.fetchQuote();
      this.restoreHold();
      this.timers.push(setInterval(() => this.tick(), 250));
    }

    destroy() {
      if (this.admission) this.admission.stop();
      this.payments.stop();
      this.feed.stop();
      this.timers.forEach(clearInterval);
      clearTimeout(this.resyncTimer);
    }

    onAccountChange() {
      if (this.admission && this.admission.accountChanged()) return;
      const tokens = session.get();
      if (this.hold && (!tokens || tokens.user.id !== this.hold.userId)) this.dropHold();
      else if (!this.hold && tokens) this.restoreHold();
      this.summarise();
    }

    toggle(label) {
      const state = this.stateOf(label);
      const seat = this.map.seats.get(label);
      const name = `Row ${seat.row}, seat ${seat.number}`;
      if (this.info.status === "cancelled") {
        say("This show was cancelled.", "error");
        return;
      }
      if (state === "selected") {
        this.selected.delete(label);
      } else if (state === "available") {
        if (this.hold && !this.hold.expired) {
          say("Release the seats you hold to choose others.", "error");
          return;
        }
        if (this.selected.size >= MAX_SEATS) {
          say(`You can choose up to ${MAX_SEATS} seats at once.`, "error");
          return;
        }
        this.selected.add(label);
      } else {
        say(`${name} is ${STATE_TEXT[state]}.`);
        return;
      }
      this.refreshSeats([label]);
    }

    describeFocus(label) {
      const seat = this.map.seats.get(label);
      this.q("#seat-focus").textContent = seat ? this.describe(seat).label : "\u00a0";
    }

    summarise() {
      const held = this.hold && !this.hold.expired;
      const labels = [...this.selected];
      const total = labels.reduce((sum, l) => {
        const cents = (this.quote ? this.quote.prices : this.info.prices)[
          this.map.seats.get(l).category];
        return sum + (cents || 0);
      }, 0);
      const button = this.q("#hold-button");
      const closed = this.info.status === "cancelled";
      this.q("#selection-summary").textContent = labels.length
        ? `${labels.length} ${labels.length === 1 ? "seat" : "seats"}: ${joinSeats(labels)} · ${formatMoney(total, this.info.currency)}`
        : held ? "Your seats are held. Release them to choose others." : "No seats selected.";
      button.disabled = labels.length === 0 || held || closed;
      button.textContent = labels.length
        ? `Hold ${labels.length} ${labels.length === 1 ? "seat" : "seats"}` : "Hold seats";
      this.q("#clear-button").disabled = labels.length === 0;
      this.q("#best-button").disabled = Boolean(held) || closed;
    }

    needLogin() {
      if (session.get()) return false;
      say("Log in to hold seats.", "error");
      account.open();
      return true;
    }

    async holdSelected() {
      if (this.needLogin() || this.selected.size === 0) return;
      const seats = [...this.selected].sort(compareLabels);
      await this.requestHold({ seats }, this.q("#hold-button"));
    }

    async holdBest() {
      if (this.needLogin()) return;
      const input = this.q("#best-count");
      const count = Number(input.value);
      if (!Number.isInteger(count) || count < 1 || count > MAX_SEATS) {
        say(`Choose between 1 and ${MAX_SEATS} seats.`, "error");
        input.focus();
        return;
      }
      const category = this.q("#best-category").value || "standard";
      await this.requestHold({ count, category }, this.q("#best-button"));
    }

    async requestHold(body, button) {
      button.disabled = true;
      button.setAttribute("aria-busy", "true");
      const sent = Date.now();
      const token = this.quoteToken();
      if (token) body = { ...body, quote_token: token };
      try {
        const { data } = await api("POST", `/shows/${this.showId}/holds`, {
          body, auth: true, headers: queue.holdHeaders(this.showId),
        });
        const took = data.seats;
        const previous = [...this.selected];
        this.selected.clear();
        this.setHold(data, sent);
        for (const label of took) this.states.set(label, "held");
        this.refreshSeats([...previous, ...took]);
        say(`Held ${took.length === 1 ? "seat" : "seats"} ${joinSeats(took)} for you. `
          + `Total ${formatMoney(data.price_cents, data.currency)}.`, "success");
        this.q("#release-button").focus({ preventScroll: true });
      } catch (err) {
        if (queue.refused(this.showId, err)) return; // back to the waiting room
        if (err.code === "quote_expired" || err.code === "quote_invalid") {
          await this.fetchQuote();
          say("Prices were updated: check them and hold again.", "error");
          return;
        }
        say(explain(err), "error");
        const taken = (err.details && err.details.seats) || [];
        if (err.code === "seat_unavailable" && taken.length) {
          for (const label of taken) {
            this.selected.delete(label);
            if (this.states.get(label) === "available") this.states.set(label, "held");
          }
          this.refreshSeats(taken);
        }
        if (err.code === "session_ended") account.open();
      } finally {
        button.removeAttribute("aria-busy");
        this.summarise();
      }
    }

    setHold(data, sentAt) {
      const expires = Date.parse(data.expires_at);
      const created = Date.parse(data.created_at);
      // The deadline on our clock: the hold's length from when we asked (never later than
      // the server's), or through the server's clock for a hold read back later.
      const fresh = sentAt !== undefined && Date.now() - sentAt < 10000;
      const deadline = fresh ? sentAt + (expires - created) : expires - clockSkewMs;
      const tokens = session.get();
      this.hold = {
        id: data.hold_id, seats: data.seats, price: data.price_cents, currency: data.currency,
        deadline, expired: false, warned: false, userId: tokens && tokens.user.id,
      };
      sessionStorage.setItem(HOLD_KEY + this.showId, JSON.stringify({
        hold_id: data.hold_id, user_id: this.hold.userId,
      }));
      const panel = this.q("#hold-panel");
      panel.hidden = false;
      panel.dataset.expired = "false";
      this.q("#hold-heading").textContent = "Held for you";
      this.q("#hold-seats").textContent = joinSeats(data.seats);
      this.q("#hold-total").textContent = formatMoney(data.price_cents, data.currency);
      this.q("#hold-timer-label").textContent = "Time left";
      this.q("#release-button").textContent = "Release";
      this.q("#extend-button").hidden = false;
      this.q("#pay-button").hidden = false;
      this.q("#pay-button").textContent = `Pay ${formatMoney(data.price_cents, data.currency)}`;
      this.q("#confirmation-panel").hidden = true;
      this.tick();
    }

    dropHold() {
      const seats = this.hold ? this.hold.seats : [];
      this.hold = null;
      sessionStorage.removeItem(HOLD_KEY + this.showId);
      this.q("#hold-panel").hidden = true;
      this.payments.close(false);
      this.refreshSeats(seats);
    }

    /** Checkout pushes the hold's expiry: read it back so the countdown tells the truth. */
    async rereadHold() {
      const hold = this.hold;
      if (!hold || hold.expired) return;
      try {
        const { data } = await api("GET", `/shows/${this.showId}/holds/${hold.id}`, {
          auth: true,
        });
        if (this.hold !== hold || hold.expired) return;
        hold.deadline = Date.parse(data.expires_at) - clockSkewMs;
        if (hold.deadline - Date.now() > 60000) hold.warned = false;
        this.tick();
      } catch {
        /* the countdown keeps its old deadline; the server's word comes with the payment */
      }
    }

    /** Paid for: the seats are mine for good, the hold is over. */
    booked(seats) {
      for (const label of seats) this.states.set(label, "booked");
      this.dropHold();
    }

    async restoreHold() {
      const saved = readJson(sessionStorage, HOLD_KEY + this.showId);
      const tokens = session.get();
      if (!saved || !tokens || saved.user_id !== tokens.user.id || this.hold) return;
      try {
        const { data } = await api("GET", `/shows/${this.showId}/holds/${saved.hold_id}`, {
          auth: true,
        });
        if (!this.hold) {
          this.setHold(data);
          this.refreshSeats(data.seats);
        }
      } catch {
        sessionStorage.removeItem(HOLD_KEY + this.showId);
      }
    }

    tick() {
      const hold = this.hold;
      if (!hold || hold.expired) return;
      const left = hold.deadline - Date.now();
      const countdown = this.q("#countdown");
      const text = mmss(left);
      if (countdown.textContent !== text) countdown.textContent = text;
      countdown.dataset.urgent = String(left <= 60000);
      if (left <= 60000 && left > 0 && !hold.warned) {
        hold.warned = true;
        say("One minute left to finish with your held seats.");
      }
      if (left <= 0) this.expire();
    }

    expire() {
      const hold = this.hold;
      hold.expired = true;
      sessionStorage.removeItem(HOLD_KEY + this.showId);
      const panel = this.q("#hold-panel");
      panel.dataset.expired = "true";
      this.q("#hold-heading").textContent = "Hold expired";
      this.q("#hold-timer-label").textContent = "Expired";
      this.q("#countdown").textContent = "00:00";
      this.q("#release-button").textContent = "Dismiss";
      this.q("#extend-button").hidden = true;
      this.q("#pay-button").hidden = true;
      this.refreshSeats(hold.seats);
      if (this.payments.holdExpired()) return; // a payment in flight will say how it ended
      say("Your hold expired, so the seats are back on sale.", "error");
    }

    async release() {
      const hold = this.hold;
      if (!hold) return;
      if (hold.expired) {
        this.dropHold();
        return;
      }
      if (this.payments.busy) {
        say("Your payment is being made. Wait for it to finish.", "error");
        return;
      }
      const button = this.q("#release-button");
      button.disabled = true;
      try {
        await api("DELETE", `/shows/${this.showId}/holds/${hold.id}`, { auth: true });
        for (const label of hold.seats) this.states.set(label, "available");
        say(`Released ${joinSeats(hold.seats)}.`);
      } catch (err) {
        if (!["hold_expired", "hold_not_found"].includes(err.code)) {
          say(explain(err), "error");
          return;
        }
        say(explain(err));
      } finally {
        button.disabled = false;
      }
      this.dropHold();
      this.map.focusCurrent();
    }

    async extend() {
      const hold = this.hold;
      if (!hold || hold.expired) return;
      const button = this.q("#extend-button");
      button.disabled = true;
      const sent = Date.now();
      try {
        const { data } = await api("POST", `/shows/${this.showId}/holds/${hold.id}/extend`, {
          auth: true,
        });
        // Our clock's deadline moves by as much as the server's did.
        const previous = hold.deadline;
        this.setHold(data);
        this.hold.deadline = Math.max(previous, this.hold.deadline, sent);
        say(`More time: your seats are held until ${new Date(this.hold.deadline)
          .toLocaleTimeString(LOCALE, { hour: "numeric", minute: "2-digit" })}.`, "success");
      } catch (err) {
        say(explain(err), "error");
      } finally {
        button.disabled = false;
      }
    }

    // ---- the live feed

    setLive(status) {
      const badge = this.q("#live-status");
      const text = { live: "Live", connecting: "Connecting…", reconnecting: "Reconnecting…",
        offline: "Offline" }[status];
      badge.dataset.status = status;
      badge.textContent = text;
      this.q("#seatmap").dataset.live = status;
      badge.title = status === "live" ? "Seats update as others book" : "";
    }

    onSnapshot(msg) {
      this.awaitingSnapshot = false;
      clearTimeout(this.resyncTimer);
      const sameLayout = JSON.stringify(msg.layout) === JSON.stringify(this.info.layout);
      if (!sameLayout || msg.status !== this.info.status) {
        this.load(msg);
        return;
      }
      this.info = msg;
      this.version = msg.version;
      const changed = [];
      for (const [label, state] of Object.entries(msg.seats)) {
        if (this.states.get(label) !== state) changed.push(label);
        this.states.set(label, state);
      }
      this.dropTaken(changed);
      this.refreshSeats(changed);
    }

    onDelta(msg) {
      if (this.awaitingSnapshot || msg.version <= this.version) return;
      if (msg.version !== this.version + 1) {
        this.resync();
        return;
      }
      this.version = msg.version;
      const changed = [];
      for (const [label, state] of msg.changes) {
        this.states.set(label, state);
        changed.push(label);
      }
      this.dropTaken(changed);
      this.refreshSeats(changed);
    }

    onHeartbeat(msg) {
      const at = typeof msg.at === "number" ? msg.at * 1000 : Date.parse(msg.at);
      if (!Number.isNaN(at)) clockSkewMs = at - Date.now();
      if (!this.awaitingSnapshot && msg.version > this.version) this.resync();
    }

    /** A gap: ask for a fresh snapshot; if none comes, read the map over HTTP. */
    resync() {
      this.awaitingSnapshot = true;
      this.feed.send({ type: "resync" });
      clearTimeout(this.resyncTimer);
      this.resyncTimer = setTimeout(async () => {
        if (!this.awaitingSnapshot) return;
        try {
          const { data } = await api("GET", `/shows/${this.showId}/seatmap`);
          if (this.awaitingSnapshot) this.onSnapshot(data);
        } catch {
          /* the feed retries on its own */
        }
      }, 5000);
    }

    /** Seats I had chosen that someone else just took leave my selection. */
    dropTaken(labels) {
      const gone = labels.filter((l) => this.selected.has(l) && this.states.get(l) !== "available");
      if (!gone.length) return;
      gone.forEach((l) => this.selected.delete(l));
      say(`${gone.length === 1 ? "Seat" : "Seats"} ${joinSeats(gone)} just went to someone else.`,
        "error");
    }
  }

  // -- paying for a hold -----------------------------------------------------------------------
  //
  // Checkout opens an attempt (and pushes the hold's expiry); the card goes straight to the
  // payment provider for a token, never to our server; confirm answers once the booking is
  // durable. A decline ends the attempt: another card gets a new checkout and a new attempt.

  const RETRY_LIMIT_S = 120; // the longest wait a Retry-After may ask of the page
  const POLL_MS = 1000;
  const POLLS = 60; // a payment still settling after a minute: the page stops watching
  const DECLINES = {
    insufficient_funds: "the card has insufficient funds",
    expired_card: "the card has expired",
    incorrect_cvc: "the security code is wrong",
    lost_card: "the card was reported lost",
    stolen_card: "the card was reported stolen",
  };

  /** Card details to the local test provider (localstripe) for a card token; its id is the
   * payment method our server confirms with. */
  async function cardToken(provider, card) {
    const form = new URLSearchParams({
      key: provider.publishable_key,
      "card[number]": card.number,
      "card[exp_month]": String(card.month),
      "card[exp_year]": String(card.year),
      "card[cvc]": card.cvc,
    });
    let response;
    try {
      response = await fetch(`${provider.js_base.replace(/\/+$/, "")}/v1/tokens`, {
        method: "POST", body: form, credentials: "omit", cache: "no-store",
        referrerPolicy: "no-referrer",
      });
    } catch {
      throw new ApiError(0, "payment_provider_unavailable", FRIENDLY.payment_provider_unavailable,
        {}, 5);
    }
    const data = await response.json().catch(() => null);
    if (response.ok && data && data.card && /^card_/.test(data.card.id || "")) return data.card.id;
    if (response.status >= 500) {
      throw new ApiError(503, "payment_provider_unavailable",
        FRIENDLY.payment_provider_unavailable, {}, 5);
    }
    throw new ApiError(response.status, "card_rejected",
      "The payment service did not accept this card. Check its number, expiry and code.");
  }

  function luhn(digits) {
    let sum = 0;
    for (let i = 0; i < digits.length; i += 1) {
      let d = Number(digits[digits.length - 1 - i]);
      if (i % 2 === 1) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
      sum += d;
    }
    return sum % 10 === 0;
  }

  /** The card form's values, or the first problem with them: [card, errors by field]. */
  function parseCard(number, expiry, cvc) {
    const errors = {};
    const digits = number.replace(/[\s-]/g, "");
    if (!/^\d{12,19}$/.test(digits)) errors.number = "Enter the card number, digits only.";
    else if (!luhn(digits)) errors.number = "This card number is not valid. Check it.";
    const m = /^\s*(\d{1,2})\s*\/?\s*(\d{2}|\d{4})\s*$/.exec(expiry);
    let month = 0;
    let year = 0;
    if (!m || Number(m[1]) < 1 || Number(m[1]) > 12) {
      errors.expiry = "Enter the expiry date as MM/YY.";
    } else {
      month = Number(m[1]);
      year = m[2].length === 2 ? 2000 + Number(m[2]) : Number(m[2]);
      if (new Date(year, month, 1) <= new Date()) errors.expiry = "This card has expired.";
    }
    if (!/^\d{3,4}$/.test(cvc.trim())) errors.cvc = "Enter the 3 or 4 digit security code.";
    return [{ number: digits, month, year, cvc: cvc.trim() }, errors];
  }

  /** The show page's payment step: the card form, the attempts, the confirmation. */
  class PaymentPanel {
    constructor(show) {
      this.show = show;
      this.payment = null; // the current attempt, as the API last described it
      this.busy = false;
      this.run = 0; // bumped to abandon whatever is in flight (page left, hold ended)
      this.wire();
    }

    q(selector) {
      return this.show.q(selector);
    }

    wire() {
      this.q("#card-form").addEventListener("submit", (event) => {
        event.preventDefault();
        this.pay();
      });
      for (const id of ["#payment-back", "#payment-unsupported-back"]) {
        this.q(id).addEventListener("click", () => this.close(true));
      }
      this.q("#confirmation-done").addEventListener("click", () => {
        this.q("#confirmation-panel").hidden = true;
        this.show.map.focusCurrent();
      });
      for (const id of ["#card-number", "#card-exp", "#card-cvc"]) {
        this.q(id).addEventListener("input", () => this.fieldError(id, null));
      }
    }

    stop() {
      this.run += 1;
    }

    // ---- the panel

    /** The hold panel's Pay button: open the panel on an attempt (the open one, if any). */
    async open() {
      const hold = this.show.hold;
      if (!hold || hold.expired || this.busy || this.show.needLogin()) return;
      const panel = this.q("#payment-panel");
      panel.hidden = false;
      this.notice("");
      this.q("#payment-amount").textContent = formatMoney(hold.price, hold.currency);
      const run = this.run;
      const ready = await this.during(() => this.checkout(run));
      if (!ready || run !== this.run || !this.payment) return;
      this.q(this.payment.provider.js_base ? "#card-number" : "#payment-heading").focus();
    }

    close(returnFocus) {
      this.stop();
      this.busy = false;
      this.q("#payment-panel").hidden = true;
      this.notice("");
      this.clearCard(true);
      if (returnFocus) this.q("#pay-button").focus();
    }

    /** The hold ran out on our clock; true while a payment is in flight (its answer says how
     * it ended, booked or refunded). */
    holdExpired() {
      if (this.busy) return true;
      this.close(false);
      return false;
    }

    /** Run ``work`` with the form and the hold's buttons disabled; false if it failed. */
    async during(work) {
      this.setBusy(true);
      try {
        await work();
        return true;
      } catch (err) {
        this.failed(err);
        return false;
      } finally {
        this.setBusy(false);
      }
    }

    setBusy(busy) {
      this.busy = busy;
      const submit = this.q("#card-submit");
      submit.disabled = busy || !(this.payment && this.payment.provider.js_base);
      submit.setAttribute("aria-busy", String(busy));
      this.q("#pay-button").disabled = busy;
      this.q("#release-button").disabled = busy;
      this.q("#payment-panel").setAttribute("aria-busy", String(busy));
    }

    /** A message in the panel: declines, outages, progress (``kind`` "info"). A ``quiet``
     * change (a countdown's tick) is shown but not read out again. */
    notice(text, kind = "error", quiet = false) {
      const box = this.q("#payment-notice");
      box.setAttribute("aria-live", quiet ? "off" : kind === "error" ? "assertive" : "polite");
      box.hidden = !text;
      box.dataset.kind = kind;
      box.textContent = text;
    }

    fieldError(id, text) {
      const input = this.q(id);
      const box = this.q(`${id}-error`);
      box.hidden = !text;
      box.textContent = text || "";
      if (text) input.setAttribute("aria-invalid", "true");
      else input.removeAttribute("aria-invalid");
    }

    clearCard(all) {
      this.q("#card-number").value = "";
      this.q("#card-cvc").value = "";
      if (all) this.q("#card-exp").value = "";
      for (const id of ["#card-number", "#card-exp", "#card-cvc"]) this.fieldError(id, null);
    }

    readCard() {
      const [card, errors] = parseCard(this.q("#card-number").value, this.q("#card-exp").value,
        this.q("#card-cvc").value);
      const fields = [["#card-number", errors.number], ["#card-exp", errors.expiry],
        ["#card-cvc", errors.cvc]];
      for (const [id, text] of fields) this.fieldError(id, text || null);
      const first = fields.find(([, text]) => text);
      if (!first) return card;
      this.q(first[0]).focus();
      return null;
    }

    // ---- the steps

    async checkout(run) {
      const hold = this.show.hold;
      const path = `/shows/${this.show.showId}/holds/${hold.id}/checkout`;
      const send = (key) => {
        const headers = this.stepUp && this.stepUp.holdId === hold.id
          ? { "Step-Up-Token": this.stepUp.token } : {};
        return api("POST", path, { auth: true, key, retryBusy: false, headers })
          .then((r) => r.data);
      };
      let payment;
      try {
        payment = await this.patiently(run, send);
      } catch (err) {
        if (!(err instanceof ApiError) || err.code !== "verification_required") throw err;
        if (!(await this.verify(run, hold.id))) return;
        payment = await this.patiently(run, send);
      }
      if (payment === null) return;
      this.attempt(payment);
      await this.show.rereadHold();
    }

    /** The fraud check asked this customer to confirm it is them: their password, once per
     * hold. True once confirmed, false if they left. */
    verify(run, holdId) {
      const form = this.q("#step-up-form");
      const input = this.q("#step-up-password");
      const error = this.q("#step-up-error");
      form.hidden = false;
      input.value = "";
      input.focus();
      return new Promise((resolve) => {
        const done = (ok) => {
          form.removeEventListener("submit", submit);
          form.hidden = true;
          resolve(ok);
        };
        const submit = async (event) => {
          event.preventDefault();
          if (run !== this.run) return done(false);
          if (!input.value) {
            error.textContent = "Enter your password.";
            error.hidden = false;
            return undefined;
          }
          try {
            const { data } = await api("POST", "/auth/step-up", {
              auth: true, body: { password: input.value, hold_id: holdId },
            });
            this.stepUp = { holdId, token: data.step_up_token };
            error.hidden = true;
            return done(true);
          } catch (err) {
            error.textContent = explain(err);
            error.hidden = false;
            input.focus();
            return undefined;
          }
        };
        form.addEventListener("submit", submit);
      });
    }

    attempt(payment) {
      this.payment = payment;
      const supported = Boolean(payment.provider && payment.provider.js_base);
      this.q("#payment-amount").textContent = formatMoney(payment.amount_cents, payment.currency);
      this.q("#card-submit").textContent = `Pay ${formatMoney(payment.amount_cents,
        payment.currency)}`;
      this.q("#payment-attempt").textContent = payment.attempt > 1
        ? `Attempt ${payment.attempt}` : "";
      this.q("#card-form").hidden = !supported;
      this.q("#payment-unsupported").hidden = supported;
    }

    /** Pay: a new attempt if the last was declined, a card token, then confirm. */
    async pay() {
      if (this.busy) return;
      const card = this.readCard();
      if (!card) return;
      const hold = this.show.hold;
      if (!hold || hold.expired) {
        say(FRIENDLY.hold_expired, "error");
        return;
      }
      const run = this.run;
      this.notice("");
      await this.during(async () => {
        if (!this.payment || this.payment.status !== "open" || this.payment.hold_id !== hold.id) {
          await this.checkout(run);
          if (run !== this.run || !this.payment) return;
        }
        const payment = this.payment;
        this.notice("Paying…", "info");
        const method = await this.patiently(run, () => cardToken(payment.provider, card));
        if (method === null) return;
        const path = `/payments/${payment.payment_id}/confirm`;
        const done = await this.patiently(run, (key) => api("POST", path, {
          body: { payment_method: method }, auth: true, key, retryBusy: false,
        }).then((r) => r.data));
        if (done !== null) await this.settle(run, done);
      });
    }

    /** ``call(key)`` until it answers, waiting out 503s as their Retry-After asks with one
     * Idempotency-Key throughout; null once abandoned. */
    async patiently(run, call) {
      const key = newKey();
      for (;;) {
        try {
          const answer = await call(key);
          if (run !== this.run) return null;
          this.notice("");
          return answer;
        } catch (err) {
          if (run !== this.run) return null;
          if (!(err instanceof ApiError) || err.status !== 503) throw err;
          const seconds = Math.min(RETRY_LIMIT_S, Math.max(1, Math.ceil(err.retryAfter || 5)));
          if (!(await this.countdown(run, seconds))) return null;
        }
      }
    }

    /** "Retrying in N s", counted down; false if abandoned meanwhile. */
    async countdown(run, seconds) {
      const until = Date.now() + seconds * 1000;
      let shown = null;
      while (run === this.run) {
        const left = Math.ceil((until - Date.now()) / 1000);
        if (left <= 0) return true;
        if (left !== shown) {
          this.notice("Payment service unavailable, your seats are still held, "
            + `retrying in ${left} s.`, "error", shown !== null);
          shown = left;
        }
        await sleep(200);
      }
      return false;
    }

    /** The answer of confirm, followed until the payment has settled one way or the other. */
    async settle(run, first) {
      let payment = first;
      for (let polls = 0; ; polls += 1) {
        this.payment = payment;
        if (payment.status === "booked" && payment.booking_id) {
          await this.booked(payment);
          return;
        }
        if (payment.status === "refunded" || (payment.status === "refunding" && polls >= 5)) {
          this.refunded(payment);
          return;
        }
        if (payment.status === "failed" || payment.status === "canceled") {
          this.notice(payment.status === "failed"
            ? "Your card was declined. Try another card."
            : "This payment was cancelled. Press Pay to try again.");
          return;
        }
        if (polls >= POLLS) {
          this.notice("Your payment is still being processed. Look in My bookings in a "
            + "minute: it shows there once it is booked.", "info");
          return;
        }
        this.notice("Finishing your booking…", "info");
        await sleep(POLL_MS);
        if (run !== this.run) return;
        payment = (await api("GET", `/payments/${payment.payment_id}`, { auth: true })).data;
        if (run !== this.run) return;
      }
    }

    async booked(payment) {
      const show = this.show;
      let booking = null;
      try {
        booking = (await api("GET", `/bookings/${payment.booking_id}`, { auth: true })).data;
      } catch {
        /* the payment says enough; the show's own details fill in */
      }
      this.close(false);
      show.booked(payment.seats);
      const info = show.info;
      const starts = booking ? booking.starts_at : info.starts_at;
      const where = booking ? booking.theater_name : info.theater_name;
      const seats = joinSeats(payment.seats);
      this.outcome("You're booked", "Your payment went through and the seats are yours.", [
        ["Booking", h("code", { id: "confirmation-id" }, payment.booking_id)],
        ["Seats", h("span", { id: "confirmation-seats" }, seats)],
        ["Show", h("span", { id: "confirmation-time" },
          `${booking ? booking.movie_title : info.movie_title}, ${showTime(starts, null, true)}`)],
        ["Theater", `${where}, Screen ${info.screen_name}`],
        ["Paid", formatMoney(payment.amount_cents, payment.currency)],
      ], "booked");
      say(`Booked ${payment.seats.length === 1 ? "seat" : "seats"} ${seats}.`, "success");
    }

    refunded(payment) {
      const amount = formatMoney(payment.refunded_cents || payment.amount_cents, payment.currency);
      const done = payment.status === "refunded";
      this.close(false);
      this.show.dropHold();
      this.outcome("Payment refunded",
        `Your hold ended before the payment came through, so no seats were booked. The payment `
        + `${done ? "was refunded" : "is being refunded"} in full (${amount}).`, [
          ["Seats", `${joinSeats(payment.seats)} (not booked)`],
          ["Refund", amount],
        ], "refunded");
      say(`Payment refunded: no seats were booked. ${amount} ${done ? "was" : "is being"} `
        + "returned to your card.", "error");
    }

    outcome(title, text, facts, kind) {
      const panel = this.q("#confirmation-panel");
      panel.dataset.outcome = kind;
      this.q("#confirmation-heading").textContent = title;
      this.q("#confirmation-text").textContent = text;
      this.q("#confirmation-facts").replaceChildren(...facts.flatMap(([term, value]) => [
        h("dt", null, term), h("dd", null, value)]));
      panel.hidden = false;
      this.q("#confirmation-heading").focus();
    }

    /** What went wrong, said where the reader is looking. */
    failed(err) {
      const code = err instanceof ApiError ? err.code : null;
      if (code === "payment_declined") {
        this.declined(err.details);
        return;
      }
      if (code === "checkout_closed" && err.details.payment_id) {
        this.resume(err.details.payment_id);
        return;
      }
      if (code === "checkout_refused") {
        this.notice(`${FRIENDLY.checkout_refused} Reference: ${err.details.reference}.`);
        return;
      }
      if (["hold_expired", "hold_not_found", "too_many_payment_attempts"].includes(code)) {
        this.show.dropHold();
        say(explain(err), "error");
        return;
      }
      if (code === "session_ended") account.open();
      if (code === "payment_not_open" && this.payment) this.payment.status = "failed";
      this.notice(explain(err));
    }

    declined(details) {
      if (this.payment) this.payment.status = "failed";
      const why = DECLINES[details.decline_code];
      const left = Number(details.attempts_left);
      if (details.hold_released || left === 0) {
        this.show.dropHold();
        say(`Your card was declined${why ? `: ${why}` : ""}. That was the last attempt, so `
          + "your seats were released.", "error");
        return;
      }
      const tries = Number.isFinite(left)
        ? ` ${left} ${left === 1 ? "attempt" : "attempts"} left.` : "";
      this.notice(`Your card was declined${why ? `: ${why}` : ""}. Try another card.${tries}`);
      this.clearCard(false);
      this.q("#card-number").focus();
    }

    /** The hold is paid for already (another tab, or an answer that was lost): follow it. */
    async resume(paymentId) {
      const run = this.run;
      await this.during(async () => {
        const { data } = await api("GET", `/payments/${paymentId}`, { auth: true });
        if (run === this.run) await this.settle(run, data);
      });
    }
  }

  // -- my bookings -----------------------------------------------------------------------------

  async function bookingsPage(ctx) {
    crumbs([{ text: "All cities", href: "#/" }, { text: "My bookings" }]);
    const view = new BookingsPage(ctx);
    await view.load();
    return view;
  }

  class BookingsPage {
    constructor(ctx) {
      this.ctx = ctx;
      this.seq = 0;
      this.userId = null;
    }

    destroy() {
      this.seq += 1;
    }

    /** Another user (or none): read the list again. A token refresh changes nothing. */
    onAccountChange() {
      const tokens = session.get();
      if ((tokens ? tokens.user.id : null) === this.userId) return;
      this.load().catch((err) => say(explain(err), "error"));
    }

    async load() {
      const seq = ++this.seq;
      const tokens = session.get();
      this.userId = tokens ? tokens.user.id : null;
      const heading = h("h1", { tabindex: "-1" }, "My bookings");
      if (!tokens) {
        mount(this.ctx, "My bookings", heading,
          h("p", { class: "empty" }, "Log in to see your bookings."),
          h("button", { type: "button", class: "button button-primary",
            onclick: () => account.open() }, "Log in"));
        return;
      }
      const { data } = await api("GET", "/me/bookings", { auth: true });
      const refunds = await this.refunds(data.bookings);
      if (seq !== this.seq || this.ctx.stale()) return;
      mount(this.ctx, "My bookings", heading,
        data.bookings.length === 0
          ? h("p", { class: "empty" }, "You have no bookings yet.")
          : h("ul", { class: "booking-list" },
            data.bookings.map((b) => this.item(b, refunds.get(b.booking_id)))));
    }

    /** The refunds of cancelled bookings (the list itself does not carry them). */
    async refunds(bookings) {
      const cancelled = bookings.filter((b) => b.status === "cancelled").slice(0, 20);
      const found = await Promise.all(cancelled.map((b) => api("GET",
        `/bookings/${b.booking_id}`, { auth: true }).then((r) => r.data.refund, () => null)));
      return new Map(cancelled.map((b, i) => [b.booking_id, found[i]]));
    }

    item(booking, refund) {
      const started = Date.parse(booking.starts_at) <= Date.now() + clockSkewMs;
      const titleId = `booking-${booking.booking_id}`;
      const actions = h("div", { class: "row-buttons booking-actions" });
      const status = h("p", { class: "booking-status", role: "status" });
      const li = h("li", {
        class: "booking-card", "data-booking": booking.booking_id, "aria-labelledby": titleId,
      },
      h("h2", { id: titleId }, booking.movie_title),
      h("p", { class: "booking-meta" },
        `${booking.theater_name} · ${showTime(booking.starts_at, null, true)}`),
      h("p", null, `Seats ${joinSeats(booking.seats)} · `,
        formatMoney(booking.price_cents, booking.currency)),
      h("p", { class: "booking-ref" }, "Booking ", h("code", null, booking.booking_id)),
      status, actions);
      this.showStatus(li, booking, refund);
      if (booking.status === "confirmed" && !started) this.offerCancel(li, booking);
      return li;
    }

    showStatus(li, booking, refund) {
      const status = li.querySelector(".booking-status");
      const tag = booking.status === "cancelled"
        ? h("span", { class: "tag tag-cancelled" }, "Cancelled")
        : h("span", { class: "tag tag-confirmed" }, "Confirmed");
      status.replaceChildren(tag, refund !== undefined && booking.status === "cancelled"
        ? h("span", { class: "booking-refund" }, ` ${refundText(refund)}`) : "");
    }

    offerCancel(li, booking) {
      const actions = li.querySelector(".booking-actions");
      actions.replaceChildren(h("button", {
        type: "button", class: "button button-danger", "data-action": "cancel",
        onclick: () => this.askCancel(li, booking),
      }, "Cancel booking"));
    }

    askCancel(li, booking) {
      const actions = li.querySelector(".booking-actions");
      const keep = h("button", { type: "button", class: "button", "data-action": "keep",
        onclick: () => {
          this.offerCancel(li, booking);
          li.querySelector('[data-action="cancel"]').focus();
        } }, "Keep booking");
      actions.replaceChildren(
        h("p", { class: "booking-ask" }, "Cancel this booking? The seats go back on sale; "
          + "the refund depends on how long before the show you cancel."),
        h("button", { type: "button", class: "button button-danger", "data-action": "confirm-cancel",
          onclick: (event) => this.cancel(li, booking, event.currentTarget) },
        "Yes, cancel booking"),
        keep);
      keep.focus();
    }

    async cancel(li, booking, button) {
      button.disabled = true;
      button.setAttribute("aria-busy", "true");
      const key = newKey();
      try {
        const { data } = await api("POST", `/bookings/${booking.booking_id}/cancel`, {
          auth: true, key,
        });
        li.querySelector(".booking-actions").replaceChildren();
        this.showStatus(li, data.booking, data.refund);
        say(`Booking cancelled. ${refundText(data.refund)}`, "success");
        li.querySelector(".booking-status").setAttribute("tabindex", "-1");
        li.querySelector(".booking-status").focus();
      } catch (err) {
        button.disabled = false;
        button.removeAttribute("aria-busy");
        say(explain(err), "error");
      }
    }
  }

  function refundText(refund) {
    if (!refund || refund.amount_cents === 0 || refund.status === "none") {
      return "No refund: it was cancelled too close to the show.";
    }
    const amount = formatMoney(refund.amount_cents, refund.currency);
    return refund.status === "succeeded"
      ? `Refunded ${amount} to your card.` : `A refund of ${amount} is on its way to your card.`;
  }

  // -- drawing the seat map -------------------------------------------------------------------

  const PX = 34; // pixels per seat pitch

  function median(values, fallback) {
    if (!values.length) return fallback;
    const sorted = [...values].sort((a, b) => a - b);
    return sorted[Math.floor(sorted.length / 2)];
  }

  /** A seat's marks by state (check, cross, bar, hatching), shared by the map and the legend. */
  function seatShape(w, size) {
    const r = size / 2;
    const m = size * 0.22;
    return [
      svg("rect", { class: "seat-shape", x: -w / 2, y: -r, width: w, height: size, rx: 5 }),
      svg("rect", { class: "seat-hatch", x: -w / 2, y: -r, width: w, height: size, rx: 5 }),
      svg("rect", { class: "seat-back", x: -w / 2 + 3, y: r - 5, width: Math.max(2, w - 6), height: 2.5, rx: 1 }),
      svg("path", { class: "seat-check", d: `M ${-m * 1.3} 0 L ${-m * 0.3} ${m} L ${m * 1.4} ${-m}` }),
      svg("path", { class: "seat-cross", d: `M ${-m} ${-m} L ${m} ${m} M ${m} ${-m} L ${-m} ${m}` }),
      svg("path", { class: "seat-bar", d: `M ${-m * 1.2} 0 L ${m * 1.2} 0` }),
      svg("path", {
        class: "seat-lock",
        d: `M ${-m * 0.6} ${-m * 0.1} V ${-m * 0.6} A ${m * 0.6} ${m * 0.6} 0 0 1 ${m * 0.6} ${-m * 0.6} V ${-m * 0.1}`
          + ` M ${-m * 1.05} ${-m * 0.1} H ${m * 1.05} V ${m * 1.15} H ${-m * 1.05} Z`,
      }),
    ];
  }

  function swatch(state, category) {
    const size = 20;
    return svg("svg", {
      class: "swatch", width: size + 4, height: size + 4, viewBox: `${-(size + 4) / 2} ${-(size + 4) / 2} ${size + 4} ${size + 4}`,
      "aria-hidden": "true", focusable: "false",
    }, svg("g", { class: "seat", "data-state": state, "data-category": category },
      seatShape(size, size)));
  }

  class SeatMapDrawing {
    constructor(container, handlers) {
      this.container = container;
      this.handlers = handlers;
      this.seats = new Map(); // label → {label, row, number, category, x, y, el, r, c}
      this.rows = []; // [[seat, ...] by x] by distance from the screen
      this.current = null; // the one seat in the tab order (roving tabindex)
      this.describe = null;
    }

    draw(layout, describe) {
      this.describe = describe;
      this.seats.clear();
      this.rows = [];
      const rows = layout.rows.map((row) => row.seats.map((seat) => ({ ...seat, row: row.label })));
      const pitch = median(rows.flatMap((seats) => seats.slice(1)
        .map((s, i) => Math.abs(s.x - seats[i].x)).filter((d) => d > 0)), 1);
      // An aisle shows as a gap: where the positions leave none, open one.
      for (const seats of rows) {
        let shift = 0;
        seats.forEach((seat, i) => {
          const before = seats[i - 1];
          if (before && before.aisle_after && Math.abs(seat.x - before.x) < pitch * 1.5) {
            shift += pitch * 0.8;
          }
          seat.dx = seat.x + shift;
        });
      }
      const all = rows.flat();
      if (!all.length) {
        this.container.replaceChildren(h("p", { class: "empty" }, "This screen has no seats."));
        return;
      }
      const scale = PX / pitch;
      const size = PX * 0.78;
      const minX = Math.min(...all.map((s) => s.dx));
      const maxX = Math.max(...all.map((s) => s.dx));
      const minY = Math.min(...all.map((s) => s.y));
      const maxY = Math.max(...all.map((s) => s.y));
      const margin = PX * 1.4;
      const top = PX * 2.6;
      const px = (x) => margin + (x - minX) * scale;
      const py = (y) => top + (y - minY) * scale;
      const width = px(maxX) + margin;
      const height = py(maxY) + PX;

      const map = svg("svg", {
        class: "seatmap-svg", viewBox: `0 0 ${width} ${height}`, width, height,
        role: "group", "aria-label": "Seat map. The screen is at the top.",
        "aria-describedby": "map-help",
      });
      map.style.setProperty("--natural-width", `${width}px`);
      map.append(svg("defs", null,
        svg("pattern", { id: "hatch", width: 6, height: 6, patternUnits: "userSpaceOnUse",
          patternTransform: "rotate(45)" },
        svg("rect", { width: 6, height: 6, class: "hatch-bg" }),
        svg("line", { x1: 0, y1: 0, x2: 0, y2: 6, class: "hatch-line" }))));

      const screenY = PX * 0.9;
      const left = px(minX) - size / 2;
      const right = px(maxX) + size / 2;
      map.append(svg("g", { class: "screen", "aria-hidden": "true" },
        svg("path", { class: "screen-bar",
          d: `M ${left} ${screenY + 8} Q ${(left + right) / 2} ${screenY - 10} ${right} ${screenY + 8}` }),
        svg("text", { x: (left + right) / 2, y: screenY + 26, class: "screen-label" }, "SCREEN")));

      const ordered = rows.filter((r) => r.length)
        .map((seats) => [...seats].sort((a, b) => a.dx - b.dx))
        .sort((a, b) => avg(a, "y") - avg(b, "y"));
      ordered.forEach((seats, r) => {
        const group = svg("g", { class: "seat-row", role: "group", "aria-label": `Row ${seats[0].row}` });
        const first = seats[0];
        const last = seats[seats.length - 1];
        for (const [x, y] of [[px(first.dx) - PX * 0.95, py(first.y)], [px(last.dx) + PX * 0.95, py(last.y)]]) {
          group.append(svg("text", { class: "row-label", x, y, "aria-hidden": "true" }, first.row));
        }
        const placed = seats.map((seat, c) => {
          const gaps = [seats[c - 1], seats[c + 1]].filter(Boolean)
            .map((n) => Math.abs(n.dx - seat.dx)).filter((d) => d < pitch * 1.45);
          const w = Math.min(size * 1.7, Math.max(size, (Math.min(...gaps, pitch) * scale) * 0.8));
          const el = svg("g", {
            class: "seat", role: "button", tabindex: "-1", "data-seat": seat.label,
            "data-category": seat.category, transform: `translate(${px(seat.dx)} ${py(seat.y)})`,
          }, seatShape(w, size), svg("rect", {
            class: "seat-ring", x: -w / 2 - 3.5, y: -size / 2 - 3.5, width: w + 7, height: size + 7, rx: 7,
          }));
          const number = seat.label.startsWith(seat.row) && seat.label.length > seat.row.length
            ? seat.label.slice(seat.row.length) : seat.label;
          const entry = {
            label: seat.label, row: seat.row, number, category: seat.category,
            outOfService: seat.out_of_service, x: seat.dx, el, r, c,
          };
          this.seats.set(seat.label, entry);
          group.append(el);
          return entry;
        });
        this.rows.push(placed);
        map.append(group);
      });

      map.addEventListener("click", (event) => {
        const el = event.target.closest(".seat[data-seat]");
        if (!el) return;
        this.setCurrent(el.dataset.seat);
        this.handlers.toggle(el.dataset.seat);
      });
      map.addEventListener("keydown", (event) => this.onKey(event));
      map.addEventListener("focusin", (event) => {
        const el = event.target.closest(".seat[data-seat]");
        if (el) {
          this.setCurrent(el.dataset.seat);
          this.handlers.focusSeat(el.dataset.seat);
        }
      });
      map.addEventListener("focusout", () => this.handlers.focusSeat(null));
      this.container.replaceChildren(map);
      const keep = this.current && this.seats.get(this.current.label);
      this.current = null;
      this.setCurrent(keep ? keep.label : this.startSeat(layout));
    }

    /** Where keyboard users start: the free seat nearest the sweet spot (or the middle). */
    startSeat(layout) {
      const all = [...this.seats.values()];
      const spot = layout.sweet_spot;
      const midRow = this.rows[Math.floor(this.rows.length / 2)] || [];
      const target = spot ? { x: spot.x, r: null } : { x: avg(midRow, "x"), r: midRow[0] && midRow[0].r };
      const free = all.filter((s) => this.describe(s).state === "available");
      const pool = free.length ? free : all;
      const cost = (s) => Math.abs(s.x - target.x) + (target.r === null ? 0 : Math.abs(s.r - target.r) * 2);
      return pool.reduce((best, s) => (cost(s) < cost(best) ? s : best)).label;
    }

    setCurrent(label) {
      const seat = this.seats.get(label);
      if (!seat || seat === this.current) return;
      if (this.current) this.current.el.setAttribute("tabindex", "-1");
      seat.el.setAttribute("tabindex", "0");
      this.current = seat;
    }

    focusCurrent() {
      if (this.current) this.current.el.focus();
    }

    onKey(event) {
      const seat = this.current;
      if (!seat) return;
      const row = this.rows[seat.r];
      let next = null;
      switch (event.key) {
        case "ArrowLeft": next = row[seat.c - 1]; break;
        case "ArrowRight": next = row[seat.c + 1]; break;
        case "Home": next = row[0]; break;
        case "End": next = row[row.length - 1]; break;
        case "ArrowUp":
        case "ArrowDown": {
          const other = this.rows[seat.r + (event.key === "ArrowUp" ? -1 : 1)];
          if (other) next = other.reduce((best, s) => (Math.abs(s.x - seat.x) < Math.abs(best.x - seat.x) ? s : best));
          break;
        }
        case "Enter":
        case " ":
          event.preventDefault();
          this.handlers.toggle(seat.label);
          this.handlers.focusSeat(seat.label);
          return;
        default:
          return;
      }
      event.preventDefault();
      if (next) {
        this.setCurrent(next.label);
        next.el.focus();
      }
    }

    refresh() {
      for (const label of this.seats.keys()) this.refreshSeat(label);
    }

    refreshSeat(label) {
      const seat = this.seats.get(label);
      if (!seat) return;
      const { state, label: text } = this.describe(seat);
      const el = seat.el;
      if (el.dataset.state !== state) el.dataset.state = state;
      el.setAttribute("aria-label", text);
      el.setAttribute("aria-pressed", String(state === "selected"));
      if (state === "available" || state === "selected") el.removeAttribute("aria-disabled");
      else el.setAttribute("aria-disabled", "true");
      if (seat === this.current && document.activeElement === el) this.handlers.focusSeat(label);
    }
  }

  function avg(items, key) {
    return items.reduce((sum, item) => sum + item[key], 0) / Math.max(1, items.length);
  }

  // -- the live feed -----------------------------------------------------------------------------

  /** The show's websocket: reconnects with backoff after 1001, 1013 or a lost network, and
   * treats a long silence (no heartbeat) as a lost connection. */
  class LiveFeed {
    constructor(showId, handlers) {
      this.showId = showId;
      this.handlers = handlers;
      this.ws = null;
      this.attempts = 0;
      this.stopped = false;
      this.retryTimer = null;
      this.watchdog = null;
      this.onOnline = () => {
        if (!this.ws) this.connect();
      };
    }

    start() {
      window.addEventListener("online", this.onOnline);
      this.connect();
    }

    stop() {
      this.stopped = true;
      window.removeEventListener("online", this.onOnline);
      clearTimeout(this.retryTimer);
      clearTimeout(this.watchdog);
      if (this.ws) this.ws.close(1000, "page left");
      this.ws = null;
    }

    connect() {
      clearTimeout(this.retryTimer);
      if (this.stopped) return;
      const scheme = location.protocol === "https:" ? "wss:" : "ws:";
      const ws = new WebSocket(`${scheme}//${location.host}/ws/shows/${this.showId}`);
      this.ws = ws;
      this.handlers.status(this.attempts ? "reconnecting" : "connecting");
      ws.addEventListener("message", (event) => this.receive(event));
      ws.addEventListener("close", (event) => this.closed(ws, event));
      this.arm();
    }

    arm() {
      clearTimeout(this.watchdog);
      this.watchdog = setTimeout(() => {
        if (this.ws) this.ws.close(4000, "no heartbeat");
      }, 45000);
    }

    receive(event) {
      this.arm();
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch {
        return;
      }
      switch (msg.type) {
        case "snapshot":
          this.attempts = 0;
          this.handlers.status("live");
          this.handlers.snapshot(msg);
          break;
        case "delta":
          this.handlers.delta(msg);
          break;
        case "heartbeat":
          this.handlers.heartbeat(msg);
          break;
        case "resync":
          break; // a snapshot follows
        case "error":
          if (msg.error) this.handlers.error(msg);
          break;
        default:
          break;
      }
    }

    send(message) {
      if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
    }

    closed(ws, event) {
      if (ws !== this.ws) return;
      this.ws = null;
      clearTimeout(this.watchdog);
      if (this.stopped) return;
      // 1008 (policy) and 4400–4499: the server refuses this socket for good.
      if (event.code === 1008 || (event.code >= 4400 && event.code < 4500)) {
        this.handlers.status("offline");
        return;
      }
      const delay = Math.min(15000, 500 * 2 ** this.attempts) * (0.6 + Math.random() * 0.4);
      this.attempts += 1;
      this.handlers.status("reconnecting");
      this.retryTimer = setTimeout(() => this.connect(), navigator.onLine === false ? 15000 : delay);
    }
  }

  // -- the waiting room of flash sales (queue.js) ------------------------------------------------

  const queue = window.SeatserverQueue({
    api, ApiError, h, say, explain, session, account, mount, mmss, readJson, showTime, LOCALE,
    skew: () => clockSkewMs,
    route: () => route(),
  });

  // -- the booking assistant's chat panel (chat.js) ---------------------------------------------

  /** The show page of ``showId`` with the chat's hold ``holdId`` on it (restored like a hold
   * made on the page); resolves to that page, or null if it did not come. */
  async function showWithHold(showId, holdId) {
    const tokens = session.get();
    if (!tokens) {
      say(FRIENDLY.unauthorized, "error");
      account.open();
      return null;
    }
    const id = String(showId);
    const here = () => page instanceof ShowPage && page.showId === id;
    if (!(here() && page.hold && page.hold.id === holdId)) {
      sessionStorage.setItem(HOLD_KEY + id, JSON.stringify({ hold_id: holdId,
        user_id: tokens.user.id }));
      if (location.hash === `#/show/${id}`) route();
      else location.hash = `#/show/${id}`;
    }
    for (let i = 0; i < 100; i += 1) {
      if (here() && page.hold && page.hold.id === holdId) return page;
      await sleep(100);
    }
    say("That hold has ended.", "error");
    return null;
  }

  let chat = null;
  chat = window.SeatserverChat ? window.SeatserverChat({
    h, formatMoney, showTime, session, refreshTokens, mmss,
    openHold: (showId, holdId) => showWithHold(showId, holdId),
    // The chat's checkout: the show page's own payment step for that hold (its open attempt).
    openCheckout: async (showId, holdId) => {
      const show = await showWithHold(showId, holdId);
      if (show && show.q("#payment-panel").hidden) await show.payments.open();
    },
  }) : null;

  // -- the home page's movies (home.js) ----------------------------------------------------------

  const home = window.SeatserverHome ? window.SeatserverHome({
    api, h, formatMoney, showTime, session, explain, reportClick,
  }) : null;

  // The account area (account.js, privacy.js) calls the API through this page's session.
  if (window.SeatserverAccount) window.SeatserverAccount.connect({ api, session, h });

  // -- start -----------------------------------------------------------------------------------

  window.addEventListener("hashchange", () => route());
  document.addEventListener("DOMContentLoaded", () => {
    account.init();
    route();
  });
})();
