/* Seatserver web page: the chat panel of the booking assistant.
 *
 * A button opens a panel that talks to /ws/chat: it sends {"type": "auth", "access_token"} with
 * the page's session (or {"type": "auth"} logged out), with "conversation_id" when
 * this tab has a conversation, then {"type": "message", "text"}; it shows each
 * {"type": "reply", "text", "cards", "source", "escalated"}, a person's {"type": "agent"} answers,
 * and {"type": "error"}. After a drop it reconnects and resumes the same conversation.
 *
 * Cards: shows (buttons that pick one), a hold (its countdown, "Yes, checkout", its seat map),
 * a checkout (opens the page's own payment form for that payment), bookings.
 *
 * Plain script, loaded before app.js, which calls ``window.SeatserverChat(kit)`` once with its
 * helpers (DOM builder, money and time words, session, token refresh, and ``openCheckout`` /
 * ``openHold``, which take the show page to a hold and its payment step) and gets back
 * ``accountChanged``, called when the customer logs in or out.
 */
"use strict";

window.SeatserverChat = (kit) => {
  const { h, formatMoney, showTime, session, refreshTokens, mmss } = kit;
  const CONV_KEY = "seatserver.chat"; // {id, user_id}: this tab's conversation
  const RETRY_MAX_MS = 15000;
  const SOURCE_NAME = { claude: "Assistant", local: "Assistant", cache: "Assistant",
    human: "Our team" };

  let ws = null;
  let ready = false;
  let attempts = 0;
  let retryTimer = null;
  let started = false;
  let queued = []; // texts typed while (re)connecting
  let connectedAs = null; // the user id the socket speaks for (null: a visitor)
  let resuming = null; // the conversation asked back, until its "ready" (or an error) comes
  let spoken = false; // this page load has messages of its own in the log
  const timers = new Set();

  // -- the panel ---------------------------------------------------------------------------------

  const toggle = h("button", {
    type: "button", id: "chat-toggle", class: "chat-toggle button button-primary",
    "aria-expanded": "false", "aria-controls": "chat-panel",
  }, "Ask the assistant");
  const status = h("p", { id: "chat-status", class: "chat-status", role: "status" }, "");
  const log = h("ol", {
    id: "chat-log", class: "chat-log", role: "log", "aria-live": "polite",
    "aria-relevant": "additions", "aria-label": "Conversation",
  });
  const input = h("input", {
    id: "chat-input", type: "text", autocomplete: "off", maxlength: "1000",
    "aria-label": "Message to the assistant", placeholder: "e.g. comedy tonight",
  });
  const send = h("button", { type: "submit", id: "chat-send", class: "button button-primary" },
    "Send");
  const form = h("form", { class: "chat-form", novalidate: true }, input, send);
  const close = h("button", { type: "button", class: "button button-quiet chat-close",
    "aria-label": "Close the assistant" }, "×");
  const panel = h("section", {
    id: "chat-panel", class: "chat-panel", role: "region", "aria-labelledby": "chat-heading",
    hidden: true,
  },
  h("header", { class: "chat-head" },
    h("h2", { id: "chat-heading", tabindex: "-1" }, "Booking assistant"), close),
  status, log, form);

  function open() {
    panel.hidden = false;
    toggle.setAttribute("aria-expanded", "true");
    if (!started) {
      started = true;
      add("assistant", "Hello! Tell me what you'd like to see, e.g. \"action movies tonight\".");
      connect();
    }
    input.focus();
  }

  function hide(returnFocus) {
    panel.hidden = true;
    toggle.setAttribute("aria-expanded", "false");
    if (returnFocus) toggle.focus();
  }

  toggle.addEventListener("click", () => (panel.hidden ? open() : hide(true)));
  close.addEventListener("click", () => hide(true));
  panel.addEventListener("keydown", (event) => {
    if (event.key === "Escape") hide(true);
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    post(text);
  });

  function setStatus(text) {
    status.textContent = text;
    panel.dataset.state = ready ? "ready" : "connecting";
  }

  /** One line of the conversation: ``who`` is "me", "assistant", "agent" or "error". */
  function add(who, text, cards = [], extra = null) {
    const label = { me: "You", assistant: "Assistant", agent: "Our team", error: "" }[who];
    const item = h("li", { class: `chat-msg chat-${who}` },
      label ? h("span", { class: "chat-who" }, `${extra || label}: `) : null,
      h("span", { class: "chat-text" }, text),
      cards.map(renderCard));
    log.append(item);
    log.scrollTop = log.scrollHeight;
    return item;
  }

  // -- cards -------------------------------------------------------------------------------------

  function renderCard(card) {
    if (!card || typeof card !== "object") return null;
    if (card.type === "shows") return showsCard(card);
    if (card.type === "hold") return holdCard(card);
    if (card.type === "checkout") return checkoutCard(card);
    if (card.type === "booking") return bookingCard(card);
    return null;
  }

  function lowest(prices, currency) {
    const values = Object.values(prices || {}).filter((v) => Number.isInteger(v));
    return values.length ? ` · from ${formatMoney(Math.min(...values), currency)}` : "";
  }

  function showsCard(card) {
    const list = h("ul", { class: "chat-card chat-shows", "aria-label": "Shows to pick" });
    (card.shows || []).forEach((show) => {
      const when = showTime(show.starts_at, null, true);
      const text = `${show.title} · ${show.theater_name} · ${when}${lowest(show.prices, show.currency)}`;
      list.append(h("li", null, h("button", {
        type: "button", class: "button chat-pick", "data-show-id": String(show.show_id),
        onclick: () => post(`${show.title} at ${when} (show ${show.show_id})`),
      }, text)));
    });
    return list;
  }

  function holdCard(card) {
    const timer = h("span", { class: "countdown chat-countdown", role: "timer",
      "aria-atomic": "true" }, "--:--");
    const box = h("div", { class: "chat-card chat-hold", "data-hold-id": card.hold_id },
      h("p", null, h("strong", null, "Held for you: "), (card.seats || []).join(", "),
        card.total_cents != null ? ` · ${formatMoney(card.total_cents, card.currency)}` : ""),
      h("p", null, "Time left ", timer),
      h("div", { class: "row-buttons" },
        h("button", { type: "button", class: "button button-primary chat-yes",
          onclick: () => post("Yes, checkout") }, "Yes, check out"),
        h("button", { type: "button", class: "button",
          onclick: () => kit.openHold(card.show_id, card.hold_id) }, "See on the seat map")));
    const deadline = Date.parse(card.expires_at || "");
    const tick = () => {
      const left = deadline - Date.now();
      timer.textContent = Number.isNaN(left) ? "--:--" : mmss(Math.max(0, left));
      if (!(left > 0)) {
        box.dataset.expired = "true";
        clearInterval(id);
        timers.delete(id);
      }
    };
    const id = setInterval(tick, 1000);
    timers.add(id);
    tick();
    return box;
  }

  function checkoutCard(card) {
    const pay = h("button", { type: "button", class: "button button-primary chat-pay",
      onclick: () => kit.openCheckout(card.show_id, card.hold_id, card.payment_id) },
    "Open the payment form");
    setTimeout(() => kit.openCheckout(card.show_id, card.hold_id, card.payment_id), 0);
    return h("div", { class: "chat-card chat-checkout", "data-payment-id": card.payment_id },
      h("p", null, "Pay for your seats in the payment form on the show's page."), pay);
  }

  function bookingCard(card) {
    const when = card.starts_at ? showTime(card.starts_at, null, true) : "";
    return h("div", { class: "chat-card chat-booking", "data-booking-id": card.booking_id },
      h("p", null, h("strong", null, card.movie_title || "Booking"),
        when ? ` · ${when}` : "", card.seats ? ` · ${card.seats.join(", ")}` : "",
        card.status ? ` · ${card.status}` : ""),
      h("a", { href: "#/bookings" }, "My bookings"));
  }

  // -- the socket --------------------------------------------------------------------------------

  function saved() {
    try {
      const conv = JSON.parse(sessionStorage.getItem(CONV_KEY) || "null");
      const tokens = session.get();
      return conv && conv.user_id === (tokens ? tokens.user.id : null) ? conv.id : null;
    } catch {
      return null;
    }
  }

  function remember(id) {
    const tokens = session.get();
    sessionStorage.setItem(CONV_KEY, JSON.stringify({ id, user_id: tokens ? tokens.user.id : null }));
  }

  function connect() {
    clearTimeout(retryTimer);
    ready = false;
    setStatus("Connecting…");
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${location.host}/ws/chat`);
    ws = socket;
    socket.addEventListener("open", () => {
      const tokens = session.get();
      connectedAs = tokens ? tokens.user.id : null;
      resuming = saved();
      const auth = tokens ? { type: "auth", access_token: tokens.access_token } : { type: "auth" };
      if (resuming) auth.conversation_id = resuming; // the same conversation, if it still lives
      socket.send(JSON.stringify(auth));
    });
    socket.addEventListener("message", (event) => {
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch {
        return;
      }
      if (socket === ws) receive(msg);
    });
    socket.addEventListener("close", () => {
      if (socket !== ws) return;
      ws = null;
      ready = false;
      const delay = Math.min(RETRY_MAX_MS, 500 * 2 ** attempts);
      attempts += 1;
      setStatus("Reconnecting…");
      retryTimer = setTimeout(connect, delay);
    });
  }

  function receive(msg) {
    switch (msg.type) {
      case "ready":
        // The conversation asked for, or a new one when it expired.
        if (resuming && msg.conversation_id === resuming) restore(msg.messages || []);
        else if (resuming) sessionStorage.removeItem(CONV_KEY);
        resuming = null;
        begin(msg.conversation_id, msg.escalated);
        break;
      case "reply":
        add("assistant", msg.text || "", msg.cards || [], SOURCE_NAME[msg.source]);
        if (msg.escalated) {
          panel.dataset.escalated = "true";
          setStatus("A person from our team will answer here.");
        }
        break;
      case "agent":
        panel.dataset.escalated = "true";
        setStatus("A person from our team has taken over.");
        add("agent", msg.text || "");
        break;
      case "error":
        failed(msg);
        break;
      default:
        break;
    }
  }

  function begin(conversationId, escalated) {
    ready = true;
    attempts = 0;
    remember(conversationId);
    if (escalated) panel.dataset.escalated = "true";
    setStatus(escalated ? "A person from our team will answer here." : "");
    flush();
  }

  /** A reloaded page shows the conversation so far (once: after a drop it is still shown). */
  function restore(messages) {
    if (spoken) return;
    for (const m of messages) {
      add({ user: "me", assistant: "assistant", agent: "agent" }[m.role] || "assistant",
        m.content || "");
    }
    spoken = spoken || messages.length > 0;
  }

  async function failed(msg) {
    if (["token_expired", "invalid_token"].includes(msg.code) && session.get()) {
      try {
        await refreshTokens();
      } catch {
        /* logged out: the next connection is anonymous */
      }
      if (ws) ws.close();
      return;
    }
    add("error", msg.message || "Something went wrong with the assistant.");
  }

  function post(text) {
    spoken = true;
    add("me", text);
    queued.push(text);
    flush();
  }

  function flush() {
    if (!ready || !ws || ws.readyState !== WebSocket.OPEN) return;
    for (const text of queued) ws.send(JSON.stringify({ type: "message", text }));
    queued = [];
  }

  document.body.append(toggle, panel);

  return {
    /** Logged in or out: a new socket speaks for the new customer (their own conversation). */
    accountChanged() {
      const tokens = session.get();
      const user = tokens ? tokens.user.id : null;
      if (!started || user === connectedAs) return;
      if (ws) {
        const old = ws;
        ws = null;
        old.close();
      }
      connect();
    },
  };
};
