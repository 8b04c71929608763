/* Seatserver web page: the waiting room of flash sales.
 *
 * A show in a flash sale opens on this waiting room instead of its seat map: the page joins the
 * line, watches its place over the queue websocket (polling every 5 s when the socket fails),
 * and once admitted keeps the admission token (per show, in this tab's sessionStorage with its
 * expiry), goes on to the seat map and sends the token with every hold on that show. A hold
 * refused for its admission brings the customer back here with a message.
 *
 * Plain script, loaded before app.js, which calls ``window.SeatserverQueue(kit)`` once with its
 * helpers (the API client, DOM builder, messages, session, router) and gets back the hooks it
 * calls: ``admitted``, ``page``, ``holdHeaders``, ``refused`` and ``attach``. Sections: the
 * stored admission · words and times · the waiting room view · the seat map's admission bar.
 */
"use strict";

window.SeatserverQueue = (kit) => {
  const { api, ApiError, h, say, explain, session, account, mount, mmss, readJson, LOCALE } = kit;
  const ADMISSION_KEY = "seatserver.admission.";
  const POLL_MS = 5000; // polling GET /queue when the socket fails (also a heartbeat)
  const SILENCE_MS = 5000; // the socket pushes every second: this long silent, it is lost
  const SOCKET_RETRY_MS = 30000; // while polling, try the socket again this often
  const ANNOUNCE_MS = 30000; // routine changes are read out at most this often
  const REJOIN_MS = 5000; // a place that dropped out is asked back at most this often
  const REFUSED = {
    admission_required:
      "This sale lets people in from its queue: wait for your turn, then choose your seats.",
    admission_invalid:
      "Your turn could not be checked, so you are back in the queue to get it again.",
    admission_expired:
      "Your turn to choose seats has ended. You are back in the queue.",
  };
  const QUEUE_FRIENDLY = {
    queue_closed: "This sale's queue has closed.",
    rate_limited: "Many people are joining right now.",
    not_a_flash_sale: "This show is no longer in a flash sale.",
    sold_out: "Sold out: every seat of this show has been booked.",
    paused: "Every seat left is in someone's basket right now. If they don't buy, the seats "
      + "come back and the line moves again.",
  };

  let notice = null; // { showId, text }: why the customer is back in the waiting room

  // -- the stored admission ----------------------------------------------------------------------

  const admission = {
    /** This user's admission to ``showId``, if it has not run out on our clock. */
    get(showId) {
      const saved = readJson(sessionStorage, ADMISSION_KEY + showId);
      const tokens = session.get();
      if (!saved || !tokens || saved.user_id !== tokens.user.id) return null;
      if (!(saved.deadline > Date.now())) return null;
      return saved;
    },
    set(showId, standing) {
      const tokens = session.get();
      const saved = {
        token: standing.admission_token,
        expires_at: standing.token_expires_at,
        // The deadline on our clock: the server's expiry less its lead over our clock.
        deadline: Date.parse(standing.token_expires_at) - kit.skew(),
        user_id: tokens && tokens.user.id,
      };
      sessionStorage.setItem(ADMISSION_KEY + showId, JSON.stringify(saved));
      return saved;
    },
    forget(showId) {
      sessionStorage.removeItem(ADMISSION_KEY + showId);
    },
  };

  // -- words and times ---------------------------------------------------------------------------

  function clock(iso) {
    const when = new Date(iso);
    if (Number.isNaN(when.getTime())) return "";
    return when.toLocaleTimeString(LOCALE, { hour: "numeric", minute: "2-digit" });
  }

  /** An estimated wait in words, rounded as a person would say it. */
  function waitWords(seconds) {
    if (seconds === null || seconds === undefined) return "Not known yet";
    if (seconds < 45) return "Less than a minute";
    const minutes = Math.round(seconds / 60);
    if (minutes < 2) return "About a minute";
    if (minutes < 60) return `About ${minutes} minutes`;
    const hours = Math.floor(minutes / 60);
    const rest = minutes % 60;
    return `About ${hours} ${hours === 1 ? "hour" : "hours"}${rest ? ` ${rest} minutes` : ""}`;
  }

  function people(n) {
    return `${n} ${n === 1 ? "person" : "people"}`;
  }

  // -- the waiting room view ---------------------------------------------------------------------

  class WaitingRoom {
    constructor(showId, seatmap) {
      this.showId = showId;
      this.info = seatmap;
      this.stopped = false;
      this.left = false;
      this.ws = null;
      this.polling = false;
      this.pollRun = 0;
      this.timers = new Set();
      this.watchdog = null;
      this.spoken = "";
      this.spokenAt = 0;
      this.last = null; // the server's last answer
      this.rejoinedAt = 0;
      this.root = this.build();
    }

    q(selector) {
      return this.root.querySelector(selector);
    }

    build() {
      const meta = [this.info.theater_name, `Screen ${this.info.screen_name}`,
        kit.showTime(this.info.starts_at, null, true)].join(" · ");
      return h("div", { class: "queue-page" },
        h("header", { class: "show-head" },
          h("h1", { tabindex: "-1" }, `${this.info.movie_title}: waiting room`),
          h("p", { class: "show-meta" }, meta,
            h("span", { class: "tag tag-flash_sale" }, "Flash sale"))),
        h("section", {
          class: "card queue-room", "aria-labelledby": "queue-heading", "data-state": "joining",
        },
        h("div", { class: "map-toolbar" },
          h("h2", { id: "queue-heading" }, "Your place in line"),
          h("span", { id: "queue-live", class: "live-status", "data-status": "connecting" },
            "Connecting…")),
        h("p", { id: "queue-notice", class: "queue-notice", "data-kind": "error", hidden: true }),
        h("div", { id: "queue-signin", class: "queue-signin", hidden: true },
          h("p", null, "So many people want these seats that they are let in a few at a time. "
            + "Log in to take your place in the queue."),
          h("button", {
            type: "button", id: "queue-login", class: "button button-primary",
            onclick: () => account.open(),
          }, "Log in to join the queue")),
        h("div", { id: "queue-standing", class: "queue-standing" },
          h("p", { id: "queue-position", class: "queue-position" }, "Joining the queue…"),
          h("dl", { class: "facts queue-facts" },
            h("dt", null, "People in line"), h("dd", { id: "queue-waiting" }, "—"),
            h("dt", null, "Estimated wait"), h("dd", { id: "queue-eta" }, "—"),
            h("dt", null, "Let in"), h("dd", { id: "queue-rate" }, "—")),
          h("p", { id: "queue-progress-label", class: "queue-progress-label" },
            "Your way to the front"),
          h("div", {
            id: "queue-progress", class: "queue-progress", role: "progressbar",
            "aria-labelledby": "queue-progress-label", "aria-valuemin": "0",
            "aria-valuemax": "100", "aria-valuenow": "0", "aria-valuetext": "0%",
          }, h("div", { class: "queue-progress-bar" })),
          h("p", { class: "hint" }, "Keep this page open: your place is kept while it is open, "
            + "and for 10 minutes if you lose your connection.")),
        h("div", { class: "row-buttons" },
          h("button", {
            type: "button", id: "queue-leave", class: "button button-danger",
            onclick: () => this.leave(),
          }, "Leave the queue"),
          h("button", {
            type: "button", id: "queue-join", class: "button button-primary", hidden: true,
            onclick: () => this.rejoin(),
          }, "Join the queue again")),
        h("p", {
          id: "queue-announce", class: "visually-hidden", role: "status", "aria-live": "polite",
          "aria-atomic": "true",
        })));
    }

    start() {
      if (notice && notice.showId === this.showId) this.showNotice(notice.text);
      notice = null;
      if (session.get()) this.join();
      else this.signin();
    }

    destroy() {
      this.stopped = true;
      this.disconnect();
    }

    onAccountChange() {
      if (this.stopped) return;
      if (!session.get()) {
        this.disconnect();
        this.signin();
      } else if (this.root.querySelector(".queue-room").dataset.state === "signin") {
        this.join();
      }
    }

    // ---- timers, the socket and polling

    later(ms, work) {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        if (!this.stopped) work();
      }, ms);
      this.timers.add(timer);
    }

    disconnect() {
      this.timers.forEach(clearTimeout);
      this.timers.clear();
      clearTimeout(this.watchdog);
      this.polling = false;
      const ws = this.ws;
      this.ws = null;
      if (ws) ws.close(1000, "page left");
    }

    setLive(status) {
      const badge = this.q("#queue-live");
      badge.dataset.status = status;
      badge.textContent = { live: "Live", connecting: "Connecting…",
        polling: "Checking every 5 s", offline: "Offline" }[status];
    }

    connect() {
      if (this.stopped || this.ws || this.left) return;
      const tokens = session.get();
      if (!tokens) return;
      const scheme = location.protocol === "https:" ? "wss:" : "ws:";
      let ws;
      try {
        ws = new WebSocket(`${scheme}//${location.host}/ws/shows/${this.showId}/queue`);
      } catch {
        this.poll();
        return;
      }
      this.ws = ws;
      ws.addEventListener("open", () => {
        ws.send(JSON.stringify({ type: "auth", access_token: tokens.access_token }));
      });
      ws.addEventListener("message", (event) => this.receive(ws, event));
      ws.addEventListener("close", (event) => this.closed(ws, event));
      this.arm(ws);
    }

    arm(ws) {
      clearTimeout(this.watchdog);
      this.watchdog = setTimeout(() => {
        if (this.ws === ws) ws.close(4000, "silent");
      }, SILENCE_MS);
    }

    receive(ws, event) {
      if (ws !== this.ws) return;
      this.arm(ws);
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch {
        return;
      }
      if (msg.type === "queue") {
        this.polling = false;
        this.setLive("live");
        this.update(msg);
      }
    }

    closed(ws, event) {
      if (ws !== this.ws) return;
      this.ws = null;
      clearTimeout(this.watchdog);
      if (this.stopped || this.left) return;
      if (event.code === 4404 || event.code === 4409) {
        kit.route(); // no such show, or no longer a flash sale: the page reads it again
        return;
      }
      this.poll(); // 4401 included: polling refreshes the session, then the socket is tried again
      this.later(SOCKET_RETRY_MS, () => this.connect());
    }

    /** GET /queue every POLL_MS until the socket is back. */
    poll() {
      if (this.polling || this.stopped || this.left) return;
      this.polling = true;
      const run = ++this.pollRun;
      const going = () => this.polling && run === this.pollRun && !this.stopped;
      this.setLive("polling");
      const round = async () => {
        if (!going()) return;
        try {
          const { data } = await api("GET", `/shows/${this.showId}/queue`, { auth: true });
          if (going()) this.update(data);
        } catch (err) {
          if (this.failed(err)) return;
        }
        if (going()) this.later(POLL_MS, round);
      };
      round();
    }

    // ---- joining, leaving

    async join() {
      if (this.stopped) return;
      if (!session.get()) {
        this.signin();
        return;
      }
      this.left = false;
      this.rejoinedAt = Date.now();
      this.setState("joining");
      try {
        const { data } = await api("POST", `/shows/${this.showId}/queue`, { auth: true });
        if (this.stopped) return;
        this.update(data);
        if (!this.stopped && !this.left) this.connect();
      } catch (err) {
        if (!this.stopped) this.failed(err, () => this.join());
      }
    }

    async leave() {
      const button = this.q("#queue-leave");
      button.disabled = true;
      this.left = true;
      this.disconnect();
      try {
        await api("DELETE", `/shows/${this.showId}/queue`, { auth: true });
      } catch (err) {
        this.left = false;
        button.disabled = false;
        say(explain(err), "error");
        this.join();
        return;
      }
      admission.forget(this.showId);
      button.disabled = false;
      this.setState("left");
      this.setLive("offline");
      this.q("#queue-position").textContent = "You left the queue.";
      this.stats(null);
      this.announce("You left the queue.", true);
      say("You left the queue.");
      this.q("#queue-join").focus();
    }

    rejoin() {
      this.hideNotice();
      this.join();
    }

    /** An error of a join or a poll; true when the page should stop asking. ``retry`` joins
     * again later for errors that pass. */
    failed(err, retry = null) {
      const again = retry || (() => {});
      if (!(err instanceof ApiError)) err = new ApiError(0, "page_error", explain(err));
      if (err.status === 401 || err.code === "session_ended") {
        this.disconnect();
        this.signin();
        return true;
      }
      if (err.code === "not_a_flash_sale" || err.status === 404) {
        this.disconnect();
        kit.route();
        return true;
      }
      if (err.code === "queue_not_open") {
        const opens = err.details.queue_opens_at;
        this.disconnect();
        this.setState("before_queue");
        this.q("#queue-position").textContent = `The queue opens at ${clock(opens)}. `
          + "Keep this page open: it joins for you then.";
        this.announce(`The queue opens at ${clock(opens)}.`, true);
        const wait = Date.parse(opens) - kit.skew() - Date.now();
        this.later(Math.max(1000, Math.min(wait, 2 ** 31 - 1)) + Math.random() * 1000,
          () => this.join());
        return true;
      }
      if (err.code === "queue_closed") {
        this.showClosed();
        return true;
      }
      if (err.code === "sold_out") {
        this.showSoldOut();
        return true;
      }
      if (err.code === "rate_limited") {
        const after = Math.min(err.retryAfter || 5, 60);
        this.showNotice(`${QUEUE_FRIENDLY.rate_limited} Trying again in ${after} s.`);
        this.later(after * 1000, () => {
          this.hideNotice();
          again();
        });
        return Boolean(retry);
      }
      this.showNotice(explain(err));
      this.later(POLL_MS, () => {
        this.hideNotice();
        again();
      });
      return Boolean(retry);
    }

    // ---- showing where the customer stands

    showClosed() {
      this.disconnect();
      this.setState("closed");
      this.q("#queue-position").textContent = QUEUE_FRIENDLY.queue_closed;
      this.stats(null);
      this.announce(QUEUE_FRIENDLY.queue_closed, true);
    }

    showSoldOut() {
      this.setState("closed");
      this.q("#queue-position").textContent = QUEUE_FRIENDLY.sold_out;
      this.stats(null);
      this.announce(QUEUE_FRIENDLY.sold_out, true);
    }

    setState(state) {
      const room = this.q(".queue-room");
      room.dataset.state = state;
      const signin = state === "signin";
      this.q("#queue-signin").hidden = !signin;
      this.q("#queue-standing").hidden = signin;
      this.q("#queue-leave").hidden = signin || state === "left" || state === "closed"
        || state === "before_queue";
      this.q("#queue-join").hidden = state !== "left";
    }

    signin() {
      this.setState("signin");
      this.setLive("offline");
      this.announce("Log in to join the queue.", true);
    }

    showNotice(text) {
      const box = this.q("#queue-notice");
      box.textContent = text;
      box.hidden = false;
    }

    hideNotice() {
      this.q("#queue-notice").hidden = true;
    }

    update(standing) {
      if (this.stopped || this.left) return;
      const before = this.last;
      this.last = standing;
      if (standing.state === "admitted" && standing.admission_token) {
        this.admit(standing);
        return;
      }
      if (standing.phase === "closed") {
        this.showClosed();
        return;
      }
      if (standing.phase === "ended") {
        // The sale left flash-sale mode: seats are held directly now.
        this.stopped = true;
        this.disconnect();
        say("The flash sale is over: choose your seats directly.", "info");
        kit.route();
        return;
      }
      if (standing.state === "not_in_queue") {
        // The place dropped out (a long silence, a lapsed turn): ask for it back.
        if (Date.now() - this.rejoinedAt >= REJOIN_MS) this.join();
        return;
      }
      const room = this.q(".queue-room");
      this.setState("waiting");
      room.dataset.phase = standing.phase;
      room.dataset.position = standing.position === null ? "" : String(standing.position);
      const position = this.q("#queue-position");
      let spoken;
      if (standing.position === null) {
        const opens = clock(standing.sale_opens_at);
        position.replaceChildren("You are in the queue. ",
          h("strong", null, `The order is drawn at random when the sale opens at ${opens}.`));
        spoken = `You are in the queue. The order is drawn at random when the sale opens at ${opens}.`;
      } else if (standing.position === 1) {
        position.replaceChildren(h("strong", { class: "queue-number" }, "You are next."));
        spoken = "You are next in line.";
      } else {
        position.replaceChildren("You are number ",
          h("strong", { class: "queue-number" }, String(standing.position)), " in line.");
        spoken = `You are number ${standing.position} in line.`;
      }
      if (standing.phase === "paused" || standing.phase === "sold_out") {
        // Still in line (cancellations and lapsed holds bring seats back), but told why the
        // line stands still.
        position.append(" ", h("span", { class: "queue-paused" }, QUEUE_FRIENDLY[standing.phase]));
        spoken = `${spoken} ${QUEUE_FRIENDLY[standing.phase]}`;
      }
      this.stats(standing);
      const changed = !before || before.phase !== standing.phase || before.state !== standing.state;
      const near = standing.position !== null && standing.position <= 3
        && (!before || before.position !== standing.position);
      this.announce(`${spoken} Estimated wait: ${waitWords(standing.eta_s).toLowerCase()}.`,
        changed || near);
    }

    stats(standing) {
      const percent = standing ? Math.round(Math.max(0, Math.min(1, standing.progress)) * 100) : 0;
      this.q("#queue-waiting").textContent = standing ? people(standing.waiting) : "—";
      this.q("#queue-eta").textContent = standing ? waitWords(standing.eta_s) : "—";
      this.q("#queue-rate").textContent = standing
        ? `${people(standing.admission_per_min)} a minute` : "—";
      const bar = this.q("#queue-progress");
      bar.setAttribute("aria-valuenow", String(percent));
      bar.setAttribute("aria-valuetext", standing && standing.position === null
        ? "Waiting for the sale to open" : `${percent}%`);
      bar.firstElementChild.style.width = `${percent}%`;
    }

    /** Routine news is read out at most every ANNOUNCE_MS; ``urgent`` news at once. */
    announce(text, urgent = false) {
      if (text === this.spoken) return;
      const now = Date.now();
      if (!urgent && now - this.spokenAt < ANNOUNCE_MS) return;
      this.spoken = text;
      this.spokenAt = now;
      this.q("#queue-announce").textContent = text;
    }

    admit(standing) {
      this.stopped = true;
      this.disconnect();
      const saved = admission.set(this.showId, standing);
      say(`It's your turn: choose your seats. Your turn lasts until `
        + `${new Date(saved.deadline).toLocaleTimeString(LOCALE,
          { hour: "numeric", minute: "2-digit" })}.`, "success");
      kit.route(); // the same show again, now to its seat map
    }
  }

  // -- the seat map's admission bar ----------------------------------------------------------------

  /** The time left of the admission above the seat map; back to the waiting room when it runs
   * out with no seats held. */
  function attach(show) {
    if (show.info.status !== "flash_sale") return null;
    const showId = show.showId;
    const saved = admission.get(showId);
    if (!saved) return null;
    const countdown = h("span", {
      id: "admission-countdown", class: "countdown", role: "timer", "aria-atomic": "true",
    }, mmss(saved.deadline - Date.now()));
    const text = h("p", { id: "admission-text" }, "Hold your seats before your turn ends. Time left: ",
      countdown);
    const bar = h("section", { class: "card admission-bar", "aria-labelledby": "admission-heading" },
      h("h2", { id: "admission-heading" }, "It's your turn"), text);
    show.q(".show-head").after(bar);
    let warned = saved.deadline - Date.now() <= 60000;
    let over = false;
    const tick = () => {
      if (over) return;
      const left = saved.deadline - Date.now();
      const shown = mmss(left);
      if (countdown.textContent !== shown) countdown.textContent = shown;
      countdown.dataset.urgent = String(left <= 60000);
      if (left <= 60000 && left > 0 && !warned) {
        warned = true;
        say("One minute left of your turn to hold seats.");
      }
      if (left > 0) return;
      over = true;
      admission.forget(showId);
      if (show.hold && !show.hold.expired) {
        bar.dataset.over = "true";
        text.textContent = "Your turn has ended. You can still pay for the seats you hold.";
        return;
      }
      notice = { showId, text: REFUSED.admission_expired };
      say(REFUSED.admission_expired, "error");
      kit.route();
    };
    const timer = setInterval(tick, 250);
    return {
      stop() {
        clearInterval(timer);
      },
      /** True when the page was sent back to the waiting room (a new user, or none). */
      accountChanged() {
        if (over || admission.get(showId)) return false;
        over = true;
        kit.route();
        return true;
      },
    };
  }

  // -- the hooks app.js calls --------------------------------------------------------------------

  return {
    /** True when this tab holds a live admission to ``showId`` for the signed-in user. */
    admitted: (showId) => Boolean(admission.get(showId)),

    /** The waiting room of ``showId`` (its seat map's data for the heading), mounted. */
    page(showId, seatmap, ctx, title) {
      const view = new WaitingRoom(showId, seatmap);
      if (!mount(ctx, `Waiting room · ${title}`, view.root)) return null;
      view.start();
      return view;
    },

    /** The headers a hold on ``showId`` carries: the admission token, once admitted. */
    holdHeaders(showId) {
      const saved = admission.get(showId);
      return saved ? { "Admission-Token": saved.token } : {};
    },

    /** A hold refused for its admission: back to the waiting room with why. */
    refused(showId, err) {
      if (!(err instanceof ApiError) || err.status !== 403 || !REFUSED[err.code]) return false;
      admission.forget(showId);
      notice = { showId, text: REFUSED[err.code] };
      say(REFUSED[err.code], "error");
      kit.route();
      return true;
    },

    attach,
  };
};
