/* Seatserver web page: the movies on the home page.
 *
 * For a customer, GET /api/v1/home answers "Recommended for you" (each movie with why:
 * "Because you booked …", "Your genres" or "Popular in …") and "Popular in {city}"; for a
 * visitor, "Popular in {city}" alone. Each movie shows its next shows as chips that open the
 * seat map as the showtimes do (#/show/{id}); a chip at one of the customer's favourite
 * theaters, or at their usual time of day, says so in words as well as by its mark.
 *
 * The city: the customer's home city unless one was picked here; a visitor's (and that of a
 * customer with no home city) is the one picked here, else the last one browsed, else the
 * first. "Nearest first" sends the position rounded
 * to about a kilometre, and only for that request: it is never stored.
 *
 * app.js calls SeatserverHome({...}) once and, on the home page, view(cities) → {node,
 * onAccountChange, destroy}.
 */
"use strict";

window.SeatserverHome = ({ api, h, formatMoney, showTime, session, explain, reportClick }) => {
  const CITY_KEY = "seatserver.home.city";
  const TRAIL_KEY = "seatserver.trail";
  const PART_NAME = { morning: "morning", afternoon: "afternoon", evening: "evening",
    late: "late-night" };

  function stored(storage, key) {
    try {
      return JSON.parse(storage.getItem(key) || "null");
    } catch {
      return null;
    }
  }

  /** The city a visitor sees (or a customer without a home city): picked, browsed, first. */
  function chosenCity(cities) {
    const known = (id) => cities.some((c) => String(c.id) === String(id));
    const picked = localStorage.getItem(CITY_KEY);
    if (picked && known(picked)) return String(picked);
    const trail = stored(sessionStorage, TRAIL_KEY);
    if (trail && known(trail.cityId)) return String(trail.cityId);
    return cities.length ? String(cities[0].id) : null;
  }

  function view(cities) {
    const node = h("div", { id: "home-movies", class: "home-movies", "aria-busy": "true" });
    let seq = 0;
    let near = null; // {lat, lon} for this page only
    let picked = localStorage.getItem(CITY_KEY); // a city picked here overrides the home city

    async function load() {
      const mine = ++seq;
      const tokens = session.get();
      const signedIn = Boolean(tokens);
      // A customer's home city is the server's default; without one, as for a visitor.
      const homeCity = signedIn && tokens.user && tokens.user.home_city_id;
      node.setAttribute("aria-busy", "true");
      const params = new URLSearchParams();
      const fallbackCity = chosenCity(cities);
      if (picked && cities.some((c) => String(c.id) === picked)) params.set("city_id", picked);
      else if (!homeCity && fallbackCity) params.set("city_id", fallbackCity);
      if (!params.has("city_id") && !homeCity) {
        node.replaceChildren();
        node.removeAttribute("aria-busy");
        return;
      }
      if (near) {
        params.set("lat", near.lat.toFixed(2));
        params.set("lon", near.lon.toFixed(2));
      }
      let data;
      try {
        ({ data } = await api("GET", `/home?${params}`, { auth: signedIn }));
      } catch (err) {
        if (mine !== seq) return;
        node.replaceChildren(h("p", { class: "empty" }, explain(err)));
        node.removeAttribute("aria-busy");
        return;
      }
      if (mine !== seq) return;
      render(data);
      node.removeAttribute("aria-busy");
    }

    function toolbar(data) {
      const select = h("select", { id: "home-city", onchange: (event) => {
        picked = event.target.value;
        localStorage.setItem(CITY_KEY, picked);
        load();
      } }, cities.map((c) => h("option", { value: c.id, selected: String(c.id) === String(data.city.id) },
        c.name)));
      const nearButton = h("button", { type: "button", class: "button button-quiet",
        id: "home-near", onclick: () => askWhere(nearButton) },
      near ? "Nearest first ✓" : "Nearest first");
      return h("div", { class: "home-toolbar" },
        h("label", { for: "home-city" }, "City"), select,
        navigator.geolocation ? nearButton : null);
    }

    function askWhere(button) {
      button.disabled = true;
      navigator.geolocation.getCurrentPosition((position) => {
        near = { lat: position.coords.latitude, lon: position.coords.longitude };
        load();
      }, () => {
        button.disabled = false;
        button.textContent = "Location unavailable";
      }, { maximumAge: 600000, timeout: 10000 });
    }

    function render(data) {
      const nodes = [
        toolbar(data),
        data.personalized ? habitsLine(data) : null,
        data.sections.length === 0
          ? h("p", { class: "empty" }, `Nothing is on sale in ${data.city.name} this week.`)
          : null,
        ...data.sections.map((section, n) => sectionNode(section, n, data)),
      ];
      node.replaceChildren(...nodes.filter(Boolean));
    }

    function sectionNode(section, n, data) {
      return h("section", {
        class: `home-section home-${section.kind}`,
        "aria-labelledby": `home-section-${n}`,
        "data-kind": section.kind,
        "data-source": section.kind === "recommended" ? data.source : "fallback",
      },
      h("h2", { id: `home-section-${n}` }, section.title),
      h("ul", { class: "home-list" },
        section.movies.map((movie) => movieCard(movie, data, section))));
    }

    function habitsLine(data) {
      const parts = [];
      if (data.favourite_theaters && data.favourite_theaters.length) {
        parts.push(`Your theaters: ${data.favourite_theaters.map((t) => t.name).join(", ")}`);
      }
      if (data.usual_time_of_day) parts.push(`you usually go in the ${PART_NAME[data.usual_time_of_day]}`);
      return parts.length ? h("p", { class: "home-habits" }, `${parts.join(" · ")}.`) : null;
    }

    function because(movie, city) {
      if (movie.reason === "because_you_booked" && movie.because) {
        return h("p", { class: "home-because" }, "Because you booked ",
          h("cite", null, movie.because.title));
      }
      if (movie.reason === "your_genres") {
        return h("p", { class: "home-because" }, `Your genres: ${movie.genres.join(", ")}`);
      }
      return h("p", { class: "home-because" }, `Popular in ${city.name}`);
    }

    function movieCard(movie, data, section) {
      const source = section.kind === "recommended" ? data.source : "fallback";
      return h("li", { class: "home-movie", "data-movie": movie.movie_id },
        h("h3", null, movie.title),
        h("p", { class: "movie-meta" }, [movie.certificate, `${movie.runtime_min} min`,
          movie.genres.join(", ")].filter(Boolean).join(" · ")),
        because(movie, data.city),
        h("ul", { class: "home-shows", "aria-label": `Next shows of ${movie.title}` },
          movie.next_shows.map((show) => h("li", null, showChip(show, movie, source)))));
    }

    function showChip(show, movie, source) {
      const marks = [];
      if (show.favourite_theater) marks.push(h("span", { class: "home-mark home-mark-fav" }, "Your theater"));
      if (show.at_usual_time) marks.push(h("span", { class: "home-mark home-mark-time" }, "Your usual time"));
      const price = show.price_from_cents === null || show.price_from_cents === undefined
        ? null : `from ${formatMoney(show.price_from_cents, show.currency)}`;
      const distance = show.distance_km === undefined || show.distance_km === null
        ? null : `${show.distance_km < 10 ? show.distance_km.toFixed(1) : Math.round(show.distance_km)} km`;
      return h("a", {
        class: "showtime home-show",
        href: `#/show/${show.show_id}`,
        "data-show": show.show_id,
        "data-favourite": show.favourite_theater ? "true" : null,
        "data-usual": show.at_usual_time ? "true" : null,
        onclick: () => reportClick && reportClick(movie.movie_id, source),
      },
      h("span", { class: "showtime-time" }, showTime(show.local_time, null, true)),
      h("span", { class: "showtime-screen" }, [show.theater_name, distance].filter(Boolean).join(" · ")),
      price ? h("span", { class: "home-price" }, price) : null,
      show.status === "flash_sale" ? h("span", { class: "tag tag-flash_sale" }, "Flash sale") : null,
      ...marks);
    }

    load();
    return {
      node,
      onAccountChange: () => load(),
      destroy: () => {
        seq += 1; // answers still on their way are dropped
      },
    };
  }

  return { view };
};
