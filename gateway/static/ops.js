/* The operator page: business figures (charts drawn here in SVG, a table, CSV export), the
 * forecasts of upcoming shows (sorted, filtered, 25 a page) and, for ops admins, model health
 * (with alerts to acknowledge), experiments (with a stop) and the audit log. It shares the main page's session (sessionStorage), logs in
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

  /** One Idempotency-Key per user action; its retry (after a token refresh) reuses it. */
  function newKey() {
    if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  /** A call with the access token; the raw response when ``raw``; ``key``: Idempotency-Key. */
  async function api(path, { method = "GET", body, auth = true, raw = false, key } = {}) {
    for (let attempt = 0; ; attempt += 1) {
      const headers = { Accept: raw ? "text/csv" : "application/json" };
      if (body !== undefined) headers["Content-Type"] = "application/json";
      if (key) headers["Idempotency-Key"] = key;
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

  const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
  let measurer = null;

  /** The width of ``text`` in the charts' font (SVG user units: the charts' viewBox is their
   * drawn size, so labels get the room they need whatever the text). */
  function textWidth(text, size = 11, weight = 400) {
    if (measurer === null) {
      const canvas = document.createElement("canvas");
      measurer = (canvas.getContext && canvas.getContext("2d")) || false;
    }
    if (!measurer) return String(text).length * size * 0.62;
    measurer.font = `${weight} ${size}px ${FONT}`;
    return measurer.measureText(String(text)).width;
  }

  /** ``text`` cut after a whole word (with an ellipsis) so that it fits ``width``. */
  function fit(text, width, size = 11, weight = 400) {
    if (textWidth(text, size, weight) <= width) return text;
    let out = "";
    for (const word of text.split(/\s+/)) {
      const next = out ? `${out} ${word}` : word;
      if (textWidth(`${next}…`, size, weight) > width) break;
      out = next;
    }
    if (!out) {  // one long word: cut it rather than overflow
      out = text;
      while (out.length > 1 && textWidth(`${out}…`, size, weight) > width) out = out.slice(0, -1);
    }
    return `${out}…`;
  }

  const widest = (texts, size, weight) => Math.ceil(Math.max(0, ...texts.map((t) => textWidth(t, size, weight))));

  /** The smallest round step (1, 2, 2.5 or 5 times a power of ten) at least ``x``. */
  function niceStep(x) {
    if (!(x > 0)) return 1;
    const power = 10 ** Math.floor(Math.log10(x));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * power >= x * (1 - 1e-9)) return m * power;
    return 10 * power;
  }

  function moneyTick(cents, currency, whole) {
    if (!whole) return money(cents, currency);
    try {
      return new Intl.NumberFormat("en-US", {
        style: "currency", currency, minimumFractionDigits: 0, maximumFractionDigits: 0,
      }).format(cents / 100);
    } catch {
      return `${Math.round(cents / 100)} ${currency}`;
    }
  }

  /** An axis title, turned along a vertical axis when ``turn`` is ±90. */
  function axisTitle(x, y, text, turn = 0, cls = "") {
    return svg("text", {
      x: 0, y: 0, transform: `translate(${x} ${y})${turn ? ` rotate(${turn})` : ""}`,
      "text-anchor": "middle", class: `axis-title ${cls}`,
    }, text);
  }

  /** Revenue (bars, main currency, left axis) and tickets (line, right axis) per day. */
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
    const W = 720, H = 260, T = 12, B = 46, N = 4;
    const root = chartRoot(box, W, H, days.length
      ? `Revenue and tickets over ${days.length} days, from ${days[0].day} to ${days[days.length - 1].day}; `
        + `peak revenue ${money(Math.max(...days.map((d) => d.revenue)), currency)}`
      : "No shows in this range");
    if (!days.length) {
      root.append(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, "No shows in this range"));
      return;
    }
    // Round steps shared by both axes, so that one set of grid lines serves both.
    const revStep = niceStep(Math.max(1, ...days.map((d) => d.revenue)) / N);
    const tixStep = Math.max(1, Math.ceil(niceStep(Math.max(1, ...days.map((d) => d.tickets)) / N)));
    const whole = revStep % 100 === 0;
    const revTicks = Array.from({ length: N + 1 }, (_, i) => moneyTick(i * revStep, currency, whole));
    const tixTicks = Array.from({ length: N + 1 }, (_, i) => integer.format(i * tixStep));
    const L = 24 + widest(revTicks) + 8, R = 24 + widest(tixTicks) + 8;
    const bottom = H - B, step = (W - L - R) / days.length;
    const y = (v, max) => T + (bottom - T) * (1 - v / max);
    for (let i = 0; i <= N; i += 1) {
      const at = y(i, N);
      root.append(svg("line", { x1: L, y1: at, x2: W - R, y2: at, class: i ? "grid" : "axis" }));
      root.append(svg("text", { x: L - 6, y: at + 4, "text-anchor": "end", class: "tick" }, revTicks[i]));
      root.append(svg("text", { x: W - R + 6, y: at + 4, class: "tick" }, tixTicks[i]));
    }
    root.append(svg("line", { x1: L, y1: T, x2: L, y2: bottom, class: "axis" }));
    root.append(svg("line", { x1: W - R, y1: T, x2: W - R, y2: bottom, class: "axis" }));
    days.forEach((d, i) => {
      const top = y(d.revenue, revStep * N);
      const bar = svg("rect", {
        x: L + i * step + step * 0.1, y: top, width: Math.max(1, step * 0.8),
        height: bottom - top, class: "bar",
      });
      bar.append(svg("title", {}, `${d.day}: ${money(d.revenue, currency)}, ${d.tickets} tickets`));
      root.append(bar);
    });
    const points = days.map((d, i) => `${L + (i + 0.5) * step},${y(d.tickets, tixStep * N)}`);
    root.append(svg("polyline", { points: points.join(" "), class: "line" }));
    const labels = [...new Set([0, Math.floor(days.length / 2), days.length - 1])];
    labels.forEach((i, n) => {
      const anchor = labels.length > 1 && n === 0 ? "start" : n === labels.length - 1 && labels.length > 1 ? "end" : "middle";
      const x = anchor === "start" ? L + i * step : anchor === "end" ? L + (i + 1) * step : L + (i + 0.5) * step;
      root.append(svg("text", { x, y: bottom + 15, "text-anchor": anchor, class: "tick" }, days[i].day));
    });
    const middle = (T + bottom) / 2;
    root.append(axisTitle(11, middle, `Revenue, ${currency} (bars)`, -90, "revenue"));
    root.append(axisTitle(W - 16, middle, "Tickets sold (line)", 90, "tickets"));
    root.append(axisTitle((L + W - R) / 2, H - 6, "Day of the show"));
  }

  /** Horizontal bars: occupancy of each group (at most 25, the busiest). */
  function drawOccupancy(groups, by) {
    $("occupancy-caption").textContent = `Occupancy by ${by}`;
    const rows = groups.filter((g) => g.occupancy !== null)
      .sort((a, b) => b.occupancy - a.occupancy).slice(0, 25);
    const W = 720, R = 60, rowH = 22, B = 40;
    const L = Math.min(280, Math.max(80, widest(rows.map((g) => g.label)) + 12));
    const H = Math.max(40, rows.length * rowH + 10) + B;
    const root = chartRoot($("chart-occupancy"), W, H, rows.length
      ? `Occupancy by ${by}: ` + rows.slice(0, 5).map((g) => `${g.label} ${pct(g.occupancy)}`).join(", ")
      : "No capacity in this range");
    const bottom = H - B;
    const x = (v) => L + (W - L - R) * Math.max(0, Math.min(1, v));
    for (const tick of [0, 0.25, 0.5, 0.75, 1]) {
      root.append(svg("line", { x1: x(tick), y1: 0, x2: x(tick), y2: bottom, class: tick ? "grid" : "axis" }));
      root.append(svg("text", { x: x(tick), y: bottom + 14, "text-anchor": "middle", class: "tick" }, pct(tick)));
    }
    rows.forEach((g, i) => {
      const y = 5 + i * rowH;
      const width = Math.max(1, x(g.occupancy) - L);
      const label = svg("text", { x: L - 6, y: y + 15, "text-anchor": "end", class: "tick" },
        fit(g.label, L - 12));
      label.append(svg("title", {}, g.label));
      root.append(label);
      const bar = svg("rect", { x: L, y: y + 3, width, height: rowH - 6, class: "bar occupancy" });
      bar.append(svg("title", {}, `${g.label}: ${pct(g.occupancy)}`));
      root.append(bar);
      root.append(svg("text", { x: L + width + 4, y: y + 15, class: "tick" }, pct(g.occupancy)));
    });
    root.append(axisTitle((L + W - R) / 2, H - 6, "Occupancy (share of seats sold)"));
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

  const FLAGS = { sell_out: "Likely to sell out", empty: "Likely to stay empty" };
  const ORDERS = {
    soonest: "soonest first", flagged: "flagged first", fullest: "fullest first",
    emptiest: "emptiest first",
  };
  const PAGE_SIZE = 25;
  // Shows fetched at a time (the endpoint's most, or ?forecast_limit=N); "Load the next
  // shows" follows the answer's `next`.
  const FETCH_LIMIT = Math.min(1000, Math.max(1,
    Math.floor(Number(new URLSearchParams(location.search).get("forecast_limit"))) || 1000));
  const forecastState = { items: [], page: 0, next: null };

  const when = (iso) => new Date(iso).toLocaleString("en-US", {
    weekday: "short", month: "short", day: "numeric", hour: "numeric", minute: "2-digit",
  });
  const startOf = (f) => Date.parse(f.starts_at);
  const FLAG_RANK = { sell_out: 0, empty: 1 };
  const COMPARE = {
    soonest: (a, b) => startOf(a) - startOf(b) || a.show_id - b.show_id,
    flagged: (a, b) => (FLAG_RANK[a.flag] ?? 2) - (FLAG_RANK[b.flag] ?? 2)
      || startOf(a) - startOf(b) || a.show_id - b.show_id,
    fullest: (a, b) => b.occupancy - a.occupancy || startOf(a) - startOf(b),
    emptiest: (a, b) => a.occupancy - b.occupancy || startOf(a) - startOf(b),
  };

  /** Interval chart of the shows on the table's page: title on one line, theater and local
   * time on a second, both fitted whole words to the measured margin (in full on hover). */
  function drawForecastChart(items, first) {
    const W = 720, R = 24, rowH = 36, T = 4, B = 42;
    const lines = items.map((f) => [f.movie_title, `${f.theater_name} · ${when(f.starts_at)}`]);
    const L = Math.min(320, 14 + Math.max(widest(lines.map((l) => l[0]), 12, 600),
      widest(lines.map((l) => l[1]))));
    const H = T + items.length * rowH + B, bottom = H - B;
    $("forecasts-chart-caption").textContent = `Forecast final occupancy of shows ${first + 1}`
      + ` to ${first + items.length}, with its 80 % interval (orange dot: likely to sell out;`
      + " hollow dot: likely to stay empty)";
    const root = chartRoot($("chart-forecasts"), W, H, `Forecast occupancy of shows ${first + 1}`
      + ` to ${first + items.length}, each a dot at the forecast with a line across its interval`);
    const x = (v) => L + (W - L - R) * Math.max(0, Math.min(1, v));
    items.forEach((_, i) => {
      if (i % 2) root.append(svg("rect", { x: 0, y: T + i * rowH, width: W, height: rowH, class: "band" }));
    });
    for (const tick of [0, 0.25, 0.5, 0.75, 1]) {
      root.append(svg("line", { x1: x(tick), y1: T, x2: x(tick), y2: bottom, class: tick ? "grid" : "axis" }));
      root.append(svg("text", { x: x(tick), y: bottom + 14, "text-anchor": "middle", class: "tick" }, pct(tick)));
    }
    items.forEach((f, i) => {
      const top = T + i * rowH, mid = top + rowH / 2;
      const [title, where] = lines[i];
      const row = svg("g", { class: "forecast-row" });
      row.append(svg("title", {}, `${title}, ${where}: ${pct(f.occupancy)} `
        + `(${pct(f.occupancy_lo)}–${pct(f.occupancy_hi)})${f.flag ? `, ${FLAGS[f.flag].toLowerCase()}` : ""}`));
      row.append(svg("text", { x: L - 10, y: mid - 3, "text-anchor": "end", class: "label" },
        fit(title, L - 14, 12, 600)));
      row.append(svg("text", { x: L - 10, y: mid + 11, "text-anchor": "end", class: "tick" },
        fit(where, L - 14)));
      row.append(svg("line", {
        x1: x(f.occupancy_lo), y1: mid, x2: x(f.occupancy_hi), y2: mid, class: "interval",
      }));
      row.append(svg("circle", { cx: x(f.occupancy), cy: mid, r: 5, class: `dot ${f.flag || ""}` }));
      root.append(row);
    });
    root.append(axisTitle((L + W - R) / 2, H - 6,
      "Forecast final occupancy (share of seats); dot: forecast, line: 80 % interval"));
  }

  /** The current page of the sorted forecasts: table, chart and pager. */
  function drawForecasts() {
    const order = $("forecast-order").value in COMPARE ? $("forecast-order").value : "soonest";
    const all = [...forecastState.items].sort(COMPARE[order]);
    const pages = Math.max(1, Math.ceil(all.length / PAGE_SIZE));
    forecastState.page = Math.max(0, Math.min(forecastState.page, pages - 1));
    const first = forecastState.page * PAGE_SIZE;
    const shown = all.slice(first, first + PAGE_SIZE);
    const table = $("forecasts-table");
    table.tBodies[0].replaceChildren(...shown.map((f) => row(f.movie_title, [
      f.theater_name,
      when(f.starts_at),
      `${integer.format(f.sold)} of ${integer.format(f.capacity)}`,
      `${pct(f.occupancy)} (${pct(f.occupancy_lo)}–${pct(f.occupancy_hi)})`,
      `${money(f.revenue_cents, f.currency)} (${money(f.revenue_lo_cents, f.currency)}–${money(f.revenue_hi_cents, f.currency)})`,
      FLAGS[f.flag] || "",
    ])));
    const range = all.length ? `shows ${first + 1}–${first + shown.length} of ${integer.format(all.length)}` : "no shows";
    $("forecasts-caption").textContent = `Forecast occupancy and revenue per show, ${ORDERS[order]}: ${range}`;
    $("forecasts-page").textContent = `Page ${forecastState.page + 1} of ${pages} (${range})`;
    $("forecasts-prev").disabled = forecastState.page === 0;
    $("forecasts-next").disabled = forecastState.page >= pages - 1;
    $("forecasts-pager").hidden = pages < 2;
    table.hidden = false;
    $("forecasts-figure").hidden = !shown.length;
    if (shown.length) drawForecastChart(shown, first);
  }

  function forecastsPath(flag, after) {
    const params = new URLSearchParams({ limit: String(FETCH_LIMIT) });
    if ($("theater").value) params.set("theater_id", $("theater").value);
    if (flag) params.set("flag", flag);
    if (after) params.set("after", after);
    return `/admin/analytics/forecasts?${params}`;
  }

  /** Adds the forecasts of answers not yet listed; where the listing goes on (the answer
   * whose shows come in order of start, unflagged or the one flag asked for). */
  function absorb(answers) {
    const seen = new Set(forecastState.items.map((f) => f.show_id));
    for (const answer of answers) {
      for (const f of Array.isArray(answer && answer.forecasts) ? answer.forecasts : []) {
        if (!seen.has(f.show_id)) {
          seen.add(f.show_id);
          forecastState.items.push(f);
        }
      }
    }
    const last = answers[answers.length - 1];
    forecastState.next = (last && last.next) || null;
  }

  function forecastsStatus() {
    const n = forecastState.items.length;
    $("forecasts-more").hidden = !forecastState.next;
    $("forecasts-status").textContent = !n ? "No forecasts for these shows."
      : `${integer.format(n)} shows forecast`
        + (forecastState.next ? "; later shows follow with “Load the next shows”." : ".");
  }

  async function loadMoreForecasts() {
    const more = $("forecasts-more");
    if (!forecastState.next) return;
    more.disabled = true;
    try {
      absorb([await api(forecastsPath($("flag").value, forecastState.next))]);
      drawForecasts();
      forecastsStatus();
    } catch (err) {
      if (!handleAuth(err)) $("forecasts-status").textContent = "Could not load more forecasts.";
    } finally {
      more.disabled = false;
    }
  }

  async function loadForecasts() {
    const status = $("forecasts-status");
    const table = $("forecasts-table");
    const flag = $("flag").value;
    status.textContent = "Loading forecasts…";
    try {
      // Flagged first without a flag filter: the flagged shows are fetched on their own, so
      // that none is missed behind the limit (the unflagged listing goes last: it goes on).
      const wanted = flag ? [flag] : $("forecast-order").value === "flagged" ? ["sell_out", "empty", ""] : [""];
      const answers = await Promise.all(wanted.map((f) => api(forecastsPath(f))));
      forecastState.items = [];
      absorb(answers);
      forecastState.page = 0;
      drawForecasts();
      forecastsStatus();
    } catch (err) {
      if (handleAuth(err)) return;
      table.hidden = true;
      $("forecasts-figure").hidden = true;
      $("forecasts-pager").hidden = true;
      $("forecasts-more").hidden = true;
      status.textContent = "Forecasts unavailable.";
    }
  }

  function turnPage(by) {
    forecastState.page += by;
    drawForecasts();
  }

  // -- model health (ops admins) ----------------------------------------------------------

  const ALERT_KINDS = {
    latency: "Slow answers", error_rate: "Error rate", ctr_drop: "Click-through drop",
    drift: "Input drift", stale_model: "Stale model",
  };
  const DRIFT = { ok: "ok", warning: "warning", drift: "drift", too_few_samples: "too few samples" };
  const ms = (v) => (v === null || v === undefined ? "–" : v < 10 ? v.toFixed(1) : integer.format(Math.round(v)));
  const signedPct = (x) => (x === null || x === undefined ? "–" : `${x > 0 ? "+" : ""}${percent.format(x)}`);

  function cell(...children) {
    return el("td", { class: "wrap" }, ...children);
  }

  function versionCell(m) {
    if (!m.version) return cell(el("span", { class: "muted" }, "none serving"));
    const age = m.age_days === null ? "age unknown" : `${m.age_days < 1 ? `${Math.round(m.age_days * 24)} h` : `${m.age_days.toFixed(1)} d`} old`;
    const version = el("code", { title: `trained ${m.trained_at || "?"}` }, m.version);
    const line = el("span", { class: m.stale ? "badge bad" : "muted" },
      `${age}; retrain every ${m.retrain_days} d${m.stale ? " (stale)" : ""}`);
    return cell(version, el("br"), line);
  }

  function driftCell(m) {
    const d = m.drift;
    if (!d.reference) return cell(el("span", { class: "muted" }, d.note || "no training reference"));
    const features = Object.entries(d.features);
    if (!features.length) return cell(el("span", { class: "muted" }, "no features"));
    const counts = {};
    for (const [, f] of features) counts[f.status] = (counts[f.status] || 0) + 1;
    const summary = Object.entries(counts).map(([k, n]) => `${n} ${DRIFT[k] || k}`).join(", ");
    const list = el("ul", { class: "features" }, ...features.map(([name, f]) => el("li", {},
      el("span", { class: `badge ${f.status}` }, DRIFT[f.status] || f.status), " ",
      el("code", {}, name),
      ` PSI ${f.psi === null ? "–" : f.psi.toFixed(3)}, ${integer.format(f.samples)} samples`
        + (f.alert ? "" : " (reported only)"))));
    const details = el("details", {}, el("summary", {}, `${features.length} feature${features.length === 1 ? "" : "s"}: ${summary}`), list);
    const drifted = d.drifted.length ? el("strong", { class: "bad-text" }, `drifted: ${d.drifted.join(", ")}`) : "";
    return cell(drifted, details);
  }

  function drawModels(answer) {
    $("models-caption").textContent = `Models over the last ${answer.window_minutes} minutes`
      + ` (as of ${new Date(answer.generated_at).toLocaleTimeString("en-US")})`;
    $("models-table").tBodies[0].replaceChildren(...answer.models.map((m) => {
      const tr = el("tr", {}, el("th", { scope: "row" }, m.model), versionCell(m));
      for (const text of [
        integer.format(m.calls), ms(m.latency_ms.p50), ms(m.latency_ms.p95), ms(m.latency_ms.p99),
        `${pct(m.error_rate)} (${integer.format(m.errors)})`, pct(m.fallback_rate),
      ]) tr.append(el("td", {}, text));
      tr.append(driftCell(m));
      return tr;
    }));
    const r = answer.recommendations;
    const tiles = [
      ["Click-through, last 24 h", `${pct(r.last_24h.ctr)} (${integer.format(r.last_24h.clicks)} of ${integer.format(r.last_24h.impressions)})`],
      ["Click-through, 7 days before", pct(r.previous_7d.ctr)],
      ["Change in click-through", signedPct(r.ctr_change)],
      ["Conversion, last 24 h", `${pct(r.last_24h.conversion_rate)} (${integer.format(r.last_24h.conversions)})`],
    ];
    $("recs").replaceChildren(...tiles.map(([k, v]) => el("div", { class: "tile" }, el("dt", {}, k), el("dd", {}, v))));
  }

  function drawAlerts(alerts) {
    const body = $("alerts-table").tBodies[0];
    if (!alerts.length) {
      body.replaceChildren(el("tr", {}, el("td", { colspan: 5, class: "wrap left" }, "No open alerts.")));
      return;
    }
    body.replaceChildren(...alerts.map((a) => {
      const name = ALERT_KINDS[a.kind] || a.kind;
      const details = Object.entries(a.details || {})
        .map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`).join("; ");
      let ack;
      if (a.acked_at) {
        ack = `Yes, ${new Date(a.acked_at).toLocaleString("en-US")}`;
      } else {
        ack = el("button", {
          type: "button", class: "button quiet small", "data-alert": String(a.id),
          "aria-label": `Acknowledge alert ${a.id}: ${name} on ${a.model}`,
        }, "Acknowledge");
        ack.addEventListener("click", () => acknowledge(a.id, ack));
      }
      return el("tr", {}, el("th", { scope: "row" }, `${name} (#${a.id})`), el("td", {}, a.model),
        el("td", {}, new Date(a.opened_at).toLocaleString("en-US")), cell(details || "–"), el("td", {}, ack));
    }));
  }

  async function loadAlerts() {
    const answer = await api("/admin/alerts?state=open");
    drawAlerts(answer.alerts);
    return answer.alerts.length;
  }

  async function loadHealth() {
    const status = $("health-status");
    status.textContent = "Loading model health…";
    const [models, alerts] = await Promise.allSettled([api("/admin/models/monitoring?minutes=60"), loadAlerts()]);
    const failed = [models, alerts].find((r) => r.status === "rejected");
    if (failed && handleAuth(failed.reason)) return;
    if (models.status === "fulfilled") drawModels(models.value);
    status.textContent = failed ? `Could not load all of model health: ${failed.reason.message}`
      : `${models.value.models.length} models; ${alerts.value} open alert${alerts.value === 1 ? "" : "s"}.`;
  }

  async function acknowledge(id, button) {
    const status = $("health-status");
    button.disabled = true;
    try {
      await api(`/admin/alerts/${id}/ack`, { method: "POST", key: newKey() });
      await loadAlerts();
      status.textContent = `Alert ${id} acknowledged.`;
      $("alerts-heading").focus();
    } catch (err) {
      if (handleAuth(err)) return;
      button.disabled = false;
      status.textContent = `Could not acknowledge alert ${id}: ${err.message}`;
    }
  }

  // -- experiments (ops admins) -----------------------------------------------------------

  const VERDICTS = {
    too_small: "too few visitors yet to tell",
    significant: "a significant difference",
    not_significant: "no significant difference",
  };

  const pValue = (t) => (!t ? "–" : t.p_value < 0.001 ? "< 0.001" : t.p_value.toFixed(3));
  const points = (x) => `${x > 0 ? "+" : x < 0 ? "−" : ""}${Math.abs(x * 100).toFixed(1)} pp`;
  const signedMoney = (x, currency) => `${x > 0 ? "+" : x < 0 ? "−" : ""}${money(Math.abs(x), currency)}`;

  function lift(l, format) {
    if (!l) return "–";
    const [lo, hi] = l.absolute_ci;
    return `${format(l.absolute)} (${format(lo)} to ${format(hi)})`;
  }

  function resultsTable(name, r) {
    const caption = el("caption", {}, `${name} in ${r.currency}: ${VERDICTS[r.verdict] || r.verdict}`
      + ` (against ${r.control})`);
    const head = el("tr", {}, ...["Arm", "Visitors", "Converted", "Conversion", "Revenue per visitor",
      "Conversion lift (95 % interval)", "p (conversion)", "Revenue per visitor lift (95 % interval)",
      "p (revenue)"].map((h) => el("th", { scope: "col" }, h)));
    const body = el("tbody", {}, ...r.arms.map((a) => row(a.arm, [
      integer.format(a.visitors), integer.format(a.converted), pct(a.conversion),
      money(a.revenue_per_visitor, r.currency), lift(a.conversion_lift, points),
      pValue(a.conversion_test), lift(a.revenue_lift, (x) => signedMoney(x, r.currency)),
      pValue(a.revenue_test),
    ])));
    const table = el("table", { class: "compact" }, caption, el("thead", {}, head), body);
    return [el("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": caption.textContent }, table),
      el("p", { class: "note" }, r.note)];
  }

  function drawExperiment(e) {
    const id = `experiment-${e.name.replace(/[^A-Za-z0-9_-]/g, "_")}`;
    const heading = el("h3", { id: `${id}-heading`, tabindex: "-1" }, e.name, " ",
      el("span", { class: `badge ${e.status}`, "data-status": e.status }, e.status));
    const arms = e.arms.map((a) => `${a.arm} ${percent.format(a.share)}`).join(", ");
    const facts = `${e.kind} experiment; arms ${arms}; started ${new Date(e.started_at).toLocaleString("en-US")}`
      + (e.stopped_at ? `; stopped ${new Date(e.stopped_at).toLocaleString("en-US")}, everyone gets ${e.final_arm}` : "")
      + (e.computed_at ? `; results of ${new Date(e.computed_at).toLocaleTimeString("en-US")}` : "; no results computed yet");
    const article = el("article", { id, class: "experiment", "aria-labelledby": `${id}-heading` }, heading,
      el("p", {}, e.description ? `${e.description}. ` : "", el("span", { class: "muted" }, facts)));
    if (e.status === "running") {
      const arm = e.arms.some((a) => a.arm === "control") ? "control" : e.arms[0].arm;
      const stop = el("button", { type: "button", class: "button danger small" },
        `Stop ${e.name} (everyone gets ${arm})`);
      stop.addEventListener("click", () => askStop(e.name, arm));
      article.append(el("p", { class: "actions" }, stop));
    }
    for (const r of e.results || []) article.append(...resultsTable(e.name, r));
    if (e.results && !e.results.length) article.append(el("p", { class: "note" }, "No visitors yet."));
    return article;
  }

  async function loadExperiments(focusName) {
    const status = $("experiments-status");
    status.textContent = "Loading experiments…";
    try {
      const listed = (await api("/admin/experiments")).experiments;
      const detailed = await Promise.all(listed.map((e) => api(`/admin/experiments/${encodeURIComponent(e.name)}`)
        .catch((err) => { if (err.status === 401) throw err; return { ...e, results: null }; })));
      $("experiments-list").replaceChildren(...detailed.map(drawExperiment));
      const running = listed.filter((e) => e.status === "running").length;
      status.textContent = listed.length ? `${listed.length} experiment${listed.length === 1 ? "" : "s"}, ${running} running.`
        : "No experiments.";
      if (focusName) {
        const heading = document.getElementById(`experiment-${focusName.replace(/[^A-Za-z0-9_-]/g, "_")}-heading`);
        if (heading) heading.focus();
      }
    } catch (err) {
      if (!handleAuth(err)) status.textContent = `Could not load the experiments: ${err.message}`;
    }
  }

  /** Ask in a modal dialog (focus kept inside, Escape cancels), then stop. */
  function askStop(name, arm) {
    const dialog = $("stop-dialog");
    $("stop-title").textContent = `Stop the experiment ${name}?`;
    $("stop-text").textContent = `Everyone gets the ${arm} arm from now on. Quotes already given `
      + "keep their price. This cannot be undone.";
    $("stop-confirm").textContent = `Stop ${name}`;
    dialog.returnValue = "";
    dialog.onclose = () => {
      if (dialog.returnValue === "stop") stopExperiment(name, arm);
    };
    dialog.showModal();
  }

  async function stopExperiment(name, arm) {
    const status = $("experiments-status");
    status.textContent = `Stopping ${name}…`;
    try {
      await api(`/admin/experiments/${encodeURIComponent(name)}/stop`, {
        method: "POST", body: { arm }, key: newKey(),
      });
      await loadExperiments(name);
      status.textContent = `${name} stopped: everyone gets ${arm}.`;
    } catch (err) {
      if (!handleAuth(err)) status.textContent = `Could not stop ${name}: ${err.message}`;
    }
  }

  // -- audit log (ops admins) -------------------------------------------------------------

  const audit = { next: null, shown: 0 };
  const OUTCOMES = { 2: "done", 3: "done", 4: "refused", 5: "failed" };

  /** The audit read's query from the filters (days in local time; "until" takes its day). */
  function auditPath(after) {
    const params = new URLSearchParams({ limit: "50" });
    const put = (name, value) => { if (value) params.set(name, value); };
    put("actor_id", $("audit-actor").value.trim());
    put("subject_id", $("audit-subject").value.trim());
    put("action", $("audit-action").value.trim());
    const since = $("audit-since").value;
    if (since) params.set("from", new Date(`${since}T00:00`).toISOString());
    const until = $("audit-until").value;
    if (until) {
      const end = new Date(`${until}T00:00`);
      end.setDate(end.getDate() + 1);
      params.set("to", end.toISOString());
    }
    if (after) params.set("after", String(after));
    return `/admin/audit?${params}`;
  }

  function auditRow(e) {
    const outcome = e.status === null ? "–"
      : `${e.status} ${OUTCOMES[Math.floor(e.status / 100)] || ""}`.trim();
    const target = e.target_type ? `${e.target_type}${e.target_id ? ` ${e.target_id}` : ""}` : "–";
    const actor = e.actor_id === null ? "system" : `user ${e.actor_id} (${e.actor_role})`;
    return el("tr", { "data-id": String(e.id) },
      el("th", { scope: "row" }, new Date(e.at).toLocaleString("en-US")),
      el("td", { class: "left" }, actor), el("td", { class: "left" }, e.action),
      el("td", { class: "left" }, target),
      el("td", {}, e.subject_id === null ? "–" : `user ${e.subject_id}`), el("td", {}, outcome),
      el("td", { class: "left" }, e.route ? `${e.method} ${e.route}` : "–"));
  }

  async function loadAudit(older = false) {
    const status = $("audit-status");
    const table = $("audit-table");
    const more = $("audit-more");
    status.textContent = older ? "Loading older entries…" : "Searching the audit log…";
    more.disabled = true;
    try {
      const answer = await api(auditPath(older ? audit.next : null));
      const rows = answer.entries.map(auditRow);
      if (older) table.tBodies[0].append(...rows);
      else table.tBodies[0].replaceChildren(...rows);
      audit.shown = (older ? audit.shown : 0) + rows.length;
      audit.next = answer.next;
      table.hidden = audit.shown === 0;
      more.hidden = !answer.next;
      const n = audit.shown;
      status.textContent = n ? `${integer.format(n)} entr${n === 1 ? "y" : "ies"} shown`
        + `${answer.next ? "; older ones remain" : ""}.` : "No entries match.";
    } catch (err) {
      if (handleAuth(err)) return;
      status.textContent = err.status === 422 ? `Check the filters: ${err.message}`
        : `Could not read the audit log: ${err.message}`;
    } finally {
      more.disabled = false;
    }
  }

  function clearAudit() {
    $("audit-table").tBodies[0].replaceChildren();
    $("audit-table").hidden = true;
    $("audit-more").hidden = true;
    $("audit-status").textContent = "";
    Object.assign(audit, { next: null, shown: 0 });
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
    const ops = Boolean(staff && tokens.user.role === "admin");  // theater admins: not theirs
    $("model-health").hidden = !ops;
    $("experiments").hidden = !ops;
    $("audit").hidden = !ops;
    if (!ops) clearAudit();
    if (staff) {
      loadFigures();
      loadForecasts();
    }
    if (ops) {
      loadHealth();
      loadExperiments();
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
    $("forecast-order").addEventListener("change", () => {
      if ($("forecast-order").value === "flagged" && !$("flag").value) {
        loadForecasts();  // fetches the flagged shows on their own
      } else {
        forecastState.page = 0;
        drawForecasts();
      }
    });
    $("forecasts-prev").addEventListener("click", () => turnPage(-1));
    $("forecasts-next").addEventListener("click", () => turnPage(1));
    $("forecasts-more").addEventListener("click", loadMoreForecasts);
    $("audit-filters").addEventListener("submit", (event) => {
      event.preventDefault();
      loadAudit();
    });
    $("audit-more").addEventListener("click", () => loadAudit(true));
    render();
  }

  start();
})();
