/* The operator page: business figures (charts drawn here in SVG, a table, CSV export) and
 * the forecasts of upcoming shows. It shares the main page's session (sessionStorage), logs in
 * through POST /api/v1/auth/login and refreshes its access token once on token_expired. */
(() => {
  "use strict";

  const API = "/api/v1";
  const SESSION_KEY = "seatserver.session";
  const SVG = "http://www.w3.org/2000/svg";
  const STAFF = new Set(["admin", "theater_admin"]);
  const $ = (id) => document.getElementById(id);

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  const session = {
    get() {
      try {
        return JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");
      } catch {
        return null;
      }
    },
    set(body) {
      sessionStorage.setItem(SESSION_KEY, JSON.stringify({
        user: body.user, access_token: body.access_token, refresh_token: body.refresh_token,
      }));
    },
    clear() {
      sessionStorage.removeItem(SESSION_KEY);
    },
  };

  async function refreshTokens() {
    const tokens = session.get();
    if (!tokens) throw new ApiError(401, "unauthorized", "Log in first.");
    const response = await fetch(`${API}/auth/refresh`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ refresh_token: tokens.refresh_token }),
    });
    if (!response.ok) {
      session.clear();
      throw new ApiError(401, "session_ended", "Your session ended. Please log in again.");
    }
    session.set(await response.json());
  }

  /** A GET (or the login POST) with the access token; the raw response when ``raw``. */
  async function api(path, { method = "GET", body, auth = true, raw = false } = {}) {
    for (let attempt = 0; ; attempt += 1) {
      const headers = { Accept: raw ? "text/csv" : "application/json" };
      if (body !== undefined) headers["Content-Type"] = "application/json";
      const tokens = auth ? session.get() : null;
      if (auth && !tokens) throw new ApiError(401, "unauthorized", "Log in first.");
      if (tokens) headers.Authorization = `Bearer ${tokens.access_token}`;
      let response;
      try {
        response = await fetch(API + path, {
          method, headers, cache: "no-store",
          body: body === undefined ? undefined : JSON.stringify(body),
        });
      } catch {
        throw new ApiError(0, "network_error", "The server cannot be reached.");
      }
      if (response.ok) return raw ? response : response.json();
      const data = await response.json().catch(() => null);
      const error = (data && data.error) || { code: `http_${response.status}`, message: "" };
      if (response.status === 401 && error.code === "token_expired" && auth && attempt === 0) {
        await refreshTokens();
        continue;
      }
      throw new ApiError(response.status, error.code, error.message || "Something went wrong.");
    }
  }

  // -- formatting -------------------------------------------------------------------------

  const integer = new Intl.NumberFormat("en-US");
  const percent = new Intl.NumberFormat("en-US", { style: "percent", maximumFractionDigits: 1 });

  function money(cents, currency) {
    if (cents === null || cents === undefined) return "–";
    try {
      return new Intl.NumberFormat("en-US", { style: "currency", currency }).format(cents / 100);
    } catch {
      return `${(cents / 100).toFixed(2)} ${currency}`;
    }
  }

  const pct = (x) => (x === null || x === undefined ? "–" : percent.format(x));
  const moneyList = (items, field) => (items.length
    ? items.map((m) => money(m[field], m.currency)).join(" · ") : "–");

  function isoDay(date) {
    const local = new Date(date.getTime() - date.getTimezoneOffset() * 60000);
    return local.toISOString().slice(0, 10);
  }

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    for (const child of children) node.append(child);
    return node;
  }

  function svg(tag, attrs = {}, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  /** An SVG chart with a title and a text summary for screen readers. */
  function chartRoot(box, width, height, label) {
    box.replaceChildren();
    const root = svg("svg", {
      viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label, class: "chart-svg",
    });
    root.append(svg("title", {}, label));
    box.append(root);
    return root;
  }

  // -- charts -----------------------------------------------------------------------------

  /** Revenue (bars, main currency) and tickets (line) per day. */
  function drawDays(groups) {
    const box = $("chart-days");
    const totals = {};
    for (const g of groups) for (const m of g.money) {
      totals[m.currency] = (totals[m.currency] || 0) + m.revenue_cents;
    }
    const currency = Object.keys(totals).sort((a, b) => totals[b] - totals[a])[0] || "USD";
    $("days-caption").textContent = `Revenue (${currency}, bars) and tickets (line) by day`;
    const days = groups.map((g) => ({
      day: g.key,
      revenue: (g.money.find((m) => m.currency === currency) || { revenue_cents: 0 }).revenue_cents,
      tickets: g.tickets,
    }));
    const W = 720, H = 240, L = 56, R = 48, T = 12, B = 28;
    const root = chartRoot(box, W, H, days.length
      ? `Revenue and tickets over ${days.length} days, from ${days[0].day} to ${days[days.length - 1].day}; `
        + `peak revenue ${money(Math.max(...days.map((d) => d.revenue)), currency)}`
      : "No shows in this range");
    if (!days.length) {
      root.append(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, "No shows in this range"));
      return;
    }
    const maxRev = Math.max(1, ...days.map((d) => d.revenue));
    const maxTix = Math.max(1, ...days.map((d) => d.tickets));
    const step = (W - L - R) / days.length;
    const y = (v, max) => T + (H - T - B) * (1 - v / max);
    root.append(svg("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, class: "axis" }));
    root.append(svg("text", { x: L - 4, y: T + 10, "text-anchor": "end", class: "tick" },
      money(maxRev, currency)));
    root.append(svg("text", { x: W - R + 4, y: T + 10, class: "tick" }, integer.format(maxTix)));
    days.forEach((d, i) => {
      const top = y(d.revenue, maxRev);
      const bar = svg("rect", {
        x: L + i * step + step * 0.1, y: top, width: Math.max(1, step * 0.8),
        height: H - B - top, class: "bar",
      });
      bar.append(svg("title", {}, `${d.day}: ${money(d.revenue, currency)}, ${d.tickets} tickets`));
      root.append(bar);
    });
    const points = days.map((d, i) => `${L + (i + 0.5) * step},${y(d.tickets, maxTix)}`);
    root.append(svg("polyline", { points: points.join(" "), class: "line" }));
    const labels = [0, Math.floor(days.length / 2), days.length - 1];
    for (const i of new Set(labels)) {
      root.append(svg("text", {
        x: L + (i + 0.5) * step, y: H - 8, "text-anchor": "middle", class: "tick",
      }, days[i].day));
    }
  }

  /** Horizontal bars: occupancy of each group (at most 25, the busiest). */
  function drawOccupancy(groups, by) {
    $("occupancy-caption").textContent = `Occupancy by ${by}`;
    const rows = groups.filter((g) => g.occupancy !== null)
      .sort((a, b) => b.occupancy - a.occupancy).slice(0, 25);
    const W = 720, L = 200, R = 60, rowH = 22;
    const H = Math.max(40, rows.length * rowH + 10);
    const root = chartRoot($("chart-occupancy"), W, H, rows.length
      ? `Occupancy by ${by}: ` + rows.slice(0, 5).map((g) => `${g.label} ${pct(g.occupancy)}`).join(", ")
      : "No capacity in this range");
    rows.forEach((g, i) => {
      const y = 5 + i * rowH;
      const width = Math.max(1, (W - L - R) * Math.min(1, g.occupancy));
      root.append(svg("text", { x: L - 6, y: y + 15, "text-anchor": "end", class: "tick" },
        g.label.length > 30 ? `${g.label.slice(0, 29)}…` : g.label));
      const bar = svg("rect", { x: L, y: y + 3, width, height: rowH - 6, class: "bar occupancy" });
      bar.append(svg("title", {}, `${g.label}: ${pct(g.occupancy)}`));
      root.append(bar);
      root.append(svg("text", { x: L + width + 4, y: y + 15, class: "tick" }, pct(g.occupancy)));
    });
  }

  function drawFunnel(funnel) {
    const steps = [
      ["Seat-map views", funnel.seatmap_views], ["Holds", funnel.holds],
      ["Checkouts", funnel.checkouts], ["Bookings", funnel.bookings],
    ];
    const rates = [null, funnel.view_to_hold, funnel.hold_to_checkout, funnel.checkout_to_booking];
    const W = 720, L = 140, R = 160, rowH = 34, H = steps.length * rowH + 10;
    const max = Math.max(1, ...steps.map((s) => s[1]));
    const root = chartRoot($("chart-funnel"), W, H, "Booking funnel: "
      + steps.map(([name, n], i) => `${name} ${integer.format(n)}`
        + (rates[i] === null || rates[i] === undefined ? "" : ` (${pct(rates[i])} of the step before)`)).join(", "));
    steps.forEach(([name, n], i) => {
      const y = 5 + i * rowH;
      const width = Math.max(1, (W - L - R) * (n / max));
      root.append(svg("text", { x: L - 6, y: y + 20, "text-anchor": "end", class: "tick" }, name));
      root.append(svg("rect", { x: L, y: y + 4, width, height: rowH - 8, class: "bar funnel" }));
      const rate = rates[i] === null || rates[i] === undefined ? "" : ` · ${pct(rates[i])}`;
      root.append(svg("text", { x: L + width + 4, y: y + 20, class: "tick" },
        `${integer.format(n)}${rate}`));
    });
  }

  // -- the table --------------------------------------------------------------------------

  const COLUMNS = [
    ["Shows", (g) => integer.format(g.shows)],
    ["Tickets", (g) => integer.format(g.tickets)],
    ["Occupancy", (g) => pct(g.occupancy)],
    ["Revenue", (g) => moneyList(g.money, "revenue_cents")],
    ["Average price", (g) => moneyList(g.money, "average_price_cents")],
    ["Seat-map views", (g) => integer.format(g.funnel.seatmap_views)],
    ["Holds", (g) => integer.format(g.funnel.holds)],
    ["Checkouts", (g) => integer.format(g.funnel.checkouts)],
    ["Bookings made", (g) => integer.format(g.funnel.bookings)],
    ["Cancellations", (g) => integer.format(g.cancellations)],
    ["Refunds", (g) => `${integer.format(g.refunds)} (${moneyList(g.money, "refunded_cents")})`],
    ["Admissions", (g) => integer.format(g.queue_admissions)],
  ];

  function row(head, cells, headTag = "th") {
    const tr = el("tr", {}, el(headTag, headTag === "th" ? { scope: "row" } : {}, head));
    for (const text of cells) tr.append(el("td", {}, text));
    return tr;
  }

  function drawTable(answer) {
    const table = $("figures-table");
    const names = { theater: "Theater", city: "City", movie: "Movie", day: "Day" };
    $("table-caption").textContent = `Figures by ${answer.by} from ${answer.from} to ${answer.to}`;
    const head = el("tr", {}, el("th", { scope: "col" }, names[answer.by]));
    for (const [name] of COLUMNS) head.append(el("th", { scope: "col" }, name));
    table.tHead.replaceChildren(head);
    const body = table.tBodies[0];
    body.replaceChildren(...answer.groups.map((g) => row(g.label, COLUMNS.map(([, f]) => f(g)))));
    if (!answer.groups.length) {
      body.append(el("tr", {}, el("td", { colspan: COLUMNS.length + 1 }, "No shows in this range.")));
    }
    table.tFoot.replaceChildren(row("Total", COLUMNS.map(([, f]) => f(answer.totals))));
  }

  function drawSummary(totals) {
    const tiles = [
      ["Tickets", integer.format(totals.tickets)],
      ["Revenue", moneyList(totals.money, "revenue_cents")],
      ["Occupancy", pct(totals.occupancy)],
      ["Average price", moneyList(totals.money, "average_price_cents")],
      ["Cancellations", integer.format(totals.cancellations)],
      ["Refunds", `${integer.format(totals.refunds)} (${moneyList(totals.money, "refunded_cents")})`],
      ["Waiting-room admissions", integer.format(totals.queue_admissions)],
    ];
    $("summary").replaceChildren(...tiles.flatMap(([k, v]) => [
      el("div", { class: "tile" }, el("dt", {}, k), el("dd", {}, v)),
    ]));
  }

  // -- figures ----------------------------------------------------------------------------

  function query(by, format) {
    const params = new URLSearchParams({ by, from: $("from").value, to: $("to").value });
    if ($("theater").value) params.set("theater_id", $("theater").value);
    if (format) params.set("format", format);
    return `/admin/analytics/figures?${params}`;
  }

  function fillTheaters(choices) {
    const select = $("theater");
    const kept = select.value;
    const all = el("option", { value: "" }, session.get().user.role === "admin"
      ? "All theaters" : "All my theaters");
    select.replaceChildren(all, ...choices.map((t) => el("option", { value: String(t.id) },
      `${t.name} (${t.city})`)));
    select.value = choices.some((t) => String(t.id) === kept) ? kept : "";
  }

  async function loadFigures() {
    const status = $("status");
    if (!$("from").value || !$("to").value || $("from").value > $("to").value) {
      status.textContent = "Pick a range: from a day to the same or a later day.";
      return;
    }
    status.textContent = "Loading…";
    try {
      const by = $("by").value;
      const [answer, days] = await Promise.all([
        api(query(by)), by === "day" ? null : api(query("day")),
      ]);
      fillTheaters(answer.theaters);
      drawSummary(answer.totals);
      drawDays((days || answer).groups);
      drawOccupancy(answer.groups, by);
      drawFunnel(answer.totals.funnel);
      drawTable(answer);
      const when = answer.refreshed_at ? new Date(answer.refreshed_at).toLocaleString() : "not yet";
      status.textContent = `${answer.groups.length} rows. Figures last rolled up ${when}`
        + (answer.pending_changes ? `; ${answer.pending_changes} changes still to come in.` : ".");
    } catch (err) {
      if (!handleAuth(err)) status.textContent = `Could not load the figures: ${err.message}`;
    }
  }

  async function exportCsv() {
    const status = $("status");
    try {
      const response = await api(query($("by").value, "csv"), { raw: true });
      const blob = await response.blob();
      const match = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "");
      const link = el("a", { href: URL.createObjectURL(blob), download: match ? match[1] : "figures.csv" });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 10000);
      status.textContent = "The CSV file was downloaded.";
    } catch (err) {
      if (!handleAuth(err)) status.textContent = `Could not export: ${err.message}`;
    }
  }

  // -- forecasts --------------------------------------------------------------------------

  function drawForecastChart(items) {
    const shown = items.slice(0, 30);
    const W = 720, L = 220, R = 20, rowH = 20, H = Math.max(40, shown.length * rowH + 24);
    const root = chartRoot($("chart-forecasts"), W, H, `Forecast occupancy of ${shown.length} shows, `
      + "each a dot at the forecast with a line across its interval");
    const x = (v) => L + (W - L - R) * Math.max(0, Math.min(1, v));
    for (const tick of [0, 0.5, 1]) {
      root.append(svg("line", { x1: x(tick), y1: 0, x2: x(tick), y2: H - 16, class: "grid" }));
      root.append(svg("text", { x: x(tick), y: H - 4, "text-anchor": "middle", class: "tick" }, pct(tick)));
    }
    shown.forEach((f, i) => {
      const y = 10 + i * rowH;
      const label = `${f.movie_title}, ${new Date(f.starts_at).toLocaleString()}`;
      root.append(svg("text", { x: L - 6, y: y + 4, "text-anchor": "end", class: "tick" },
        label.length > 36 ? `${label.slice(0, 35)}…` : label));
      root.append(svg("line", {
        x1: x(f.occupancy_lo), y1: y, x2: x(f.occupancy_hi), y2: y, class: "interval",
      }));
      const dot = svg("circle", { cx: x(f.occupancy), cy: y, r: 4, class: `dot ${f.flag || ""}` });
      dot.append(svg("title", {}, `${label}: ${pct(f.occupancy)} (${pct(f.occupancy_lo)}–${pct(f.occupancy_hi)})`));
      root.append(dot);
    });
  }

  const FLAGS = { sell_out: "Likely to sell out", empty: "Likely to stay empty" };

  async function loadForecasts() {
    const status = $("forecasts-status");
    const table = $("forecasts-table");
    const params = new URLSearchParams();
    if ($("theater").value) params.set("theater_id", $("theater").value);
    if ($("flag").value) params.set("flag", $("flag").value);
    status.textContent = "Loading forecasts…";
    try {
      const answer = await api(`/admin/analytics/forecasts?${params}`);
      const items = Array.isArray(answer && answer.forecasts) ? answer.forecasts : [];
      table.tBodies[0].replaceChildren(...items.map((f) => row(f.movie_title, [
        f.theater_name,
        new Date(f.starts_at).toLocaleString(),
        `${integer.format(f.sold)} of ${integer.format(f.capacity)}`,
        `${pct(f.occupancy)} (${pct(f.occupancy_lo)}–${pct(f.occupancy_hi)})`,
        `${money(f.revenue_cents, f.currency)} (${money(f.revenue_lo_cents, f.currency)}–${money(f.revenue_hi_cents, f.currency)})`,
        FLAGS[f.flag] || "",
      ])));
      table.hidden = false;
      $("forecasts-figure").hidden = !items.length;
      if (items.length) drawForecastChart(items);
      status.textContent = items.length ? `${items.length} shows forecast.` : "No forecasts for these shows.";
    } catch (err) {
      if (handleAuth(err)) return;
      table.hidden = true;
      $("forecasts-figure").hidden = true;
      status.textContent = "Forecasts unavailable.";
    }
  }

  // -- who is here ------------------------------------------------------------------------

  /** True when the error was about the session (the page then shows the login or a refusal). */
  function handleAuth(err) {
    if (err.status === 401) {
      session.clear();
      render();
      return true;
    }
    if (err.status === 403 && !STAFF.has((session.get() || { user: {} }).user.role)) {
      render();
      return true;
    }
    return false;
  }

  function render() {
    const tokens = session.get();
    const staff = tokens && STAFF.has(tokens.user.role);
    $("signed-in").hidden = !tokens;
    $("who").textContent = tokens ? tokens.user.email || tokens.user.display_name || "" : "";
    $("login-section").hidden = Boolean(tokens);
    $("no-access").hidden = !tokens || staff;
    $("dashboard").hidden = !staff;
    if (staff) {
      loadFigures();
      loadForecasts();
    } else if (!tokens) {
      $("login-email").focus();
    }
  }

  async function login(event) {
    event.preventDefault();
    const error = $("login-error");
    error.textContent = "";
    try {
      const body = await api("/auth/login", {
        method: "POST", auth: false,
        body: { email: $("login-email").value, password: $("login-password").value },
      });
      session.set(body);
      $("login-password").value = "";
      render();
      $("main").focus();
    } catch (err) {
      error.textContent = err.status === 401
        ? "That email and password do not match an account." : err.message;
    }
  }

  function logout() {
    const tokens = session.get();
    if (tokens) {
      fetch(`${API}/auth/logout`, {
        method: "POST",
        headers: { Authorization: `Bearer ${tokens.access_token}`, "Content-Type": "application/json" },
        body: JSON.stringify({ refresh_token: tokens.refresh_token }),
      }).catch(() => {});
    }
    session.clear();
    render();
  }

  function start() {
    const today = new Date();
    $("to").value = isoDay(new Date(today.getTime() + 7 * 86400000));
    $("from").value = isoDay(new Date(today.getTime() - 30 * 86400000));
    $("login-form").addEventListener("submit", login);
    $("logout").addEventListener("click", logout);
    $("no-access-logout").addEventListener("click", logout);
    $("filters").addEventListener("submit", (event) => {
      event.preventDefault();
      loadFigures();
      loadForecasts();
    });
    $("export").addEventListener("click", exportCsv);
    $("flag").addEventListener("change", loadForecasts);
    render();
  }

  start();
})();
