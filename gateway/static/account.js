/* Seatserver web page: the customer's account area, below the page (#account): the
 * notification settings (#notifications). The privacy panel renders into #privacy beside it.
 *
 * Shown while someone is signed in: app.js keeps #account-signed-in hidden otherwise, and a
 * MutationObserver here follows it. An "Account" button joins the signed-in bar and brings
 * the area into view.
 *
 * Notifications: a grid of kinds × channels (email, text, push) that saves each change as it
 * is made (PUT /api/v1/me/notifications, one cell), the phone number texts go to (PUT or
 * DELETE /api/v1/me/phone: only its last two digits come back), and the devices registered for
 * push (DELETE /api/v1/me/devices/{id}). Texts need a number: their boxes are disabled without
 * one, and removing the number turns them all off.
 *
 * Calls go through app.js's API call and session (it connects them before the page starts);
 * window.SeatserverAccount offers that call to the other panels of the area.
 */
"use strict";

(() => {
  const API = "/api/v1";
  const KINDS = [
    ["confirmation", "Booking confirmed", "your tickets, as soon as you pay"],
    ["reminder", "Reminder", "two hours before the show"],
    ["cancellation", "Cancellations and refunds", "a booking or show cancelled, money back"],
    ["admission", "Your turn in a queue", "when a flash sale's waiting room lets you in"],
  ];
  const CHANNELS = [
    ["email", "Email"],
    ["sms", "Text"],
    ["push", "Push"],
  ];
  const PLATFORM = { web: "Browser", android: "Android phone", ios: "iPhone or iPad" };
  const FRIENDLY = {
    phone_required: "Add a phone number first: texts need one.",
    validation_failed: "That is not a phone number we can text. Use the international "
      + "format, e.g. +14155550123.",
    not_found: "That device was already removed.",
    network_error: "Cannot reach the server. Check your connection and try again.",
    session_ended: "Your session ended. Please log in again.",
  };

  const $ = (selector, root = document) => root.querySelector(selector);

  // Elements are made with app.js's h(tag, attrs, ...children), connected below.
  const h = (...args) => app.h(...args);

  // -- the API, with app.js's session ------------------------------------------------------------

  // app.js connects its own API call and session (connect() below): one refresh of the tokens,
  // one device id and one Idempotency-Key rule for the whole page.
  let app = null;

  class AccountError extends Error {
    constructor(status, code, message, details) {
      super(message);
      this.status = status;
      this.code = code;
      this.details = details || {};
    }
  }

  function tokens() {
    return app ? app.session.get() : null;
  }

  /** One authenticated call through app.js; its ApiError becomes an AccountError. */
  async function api(method, path, body) {
    if (!app) throw new AccountError(401, "session_ended", FRIENDLY.session_ended);
    try {
      return (await app.api(method, path, { body, auth: true })).data;
    } catch (err) {
      const code = err.code || "network_error";
      throw new AccountError(err.status || 0, code,
        FRIENDLY[code] || err.message || "Something went wrong.", err.details);
    }
  }

  // -- the notifications panel -------------------------------------------------------------------

  let settings = null; // the last answer of GET /me/notifications
  let seq = 0;

  function say(text, kind = "info") {
    const line = $("#notify-status");
    if (!line) return;
    line.dataset.kind = kind;
    line.textContent = text;
  }

  function cellBox(kind, kindName, channel, channelName) {
    const on = settings.preferences[kind][channel];
    const noPhone = channel === "sms" && !settings.phone.set;
    const box = h("input", {
      type: "checkbox",
      id: `notify-${kind}-${channel}`,
      "data-kind": kind,
      "data-channel": channel,
      "aria-label": `${kindName} by ${channelName.toLowerCase()}`,
      "aria-describedby": noPhone ? "notify-sms-hint" : null,
      checked: on,
      disabled: noPhone,
      onchange: (event) => saveCell(event.target),
    });
    return h("td", { class: "notify-cell" }, box);
  }

  function grid() {
    return h("table", { class: "notify-grid" },
      h("caption", { class: "visually-hidden" }, "Which notifications you get, and how"),
      h("thead", null, h("tr", null,
        h("th", { scope: "col" }, "Notification"),
        CHANNELS.map(([, name]) => h("th", { scope: "col" }, name)))),
      h("tbody", null, KINDS.map(([kind, name, hint]) => h("tr", null,
        h("th", { scope: "row" }, h("span", { class: "notify-kind" }, name),
          h("span", { class: "hint" }, hint)),
        CHANNELS.map(([channel, channelName]) => cellBox(kind, name, channel, channelName))))));
  }

  function phoneForm() {
    const phone = settings.phone;
    const input = h("input", {
      id: "notify-phone", name: "phone", type: "tel", autocomplete: "tel",
      inputmode: "tel", placeholder: "+14155550123", maxlength: 16,
      "aria-describedby": "notify-phone-hint",
    });
    const remove = phone.set ? h("button", { type: "button", id: "notify-phone-remove",
      class: "button button-quiet", onclick: () => removePhone() }, "Remove number") : null;
    return h("form", { id: "notify-phone-form", class: "notify-phone", novalidate: true,
      onsubmit: (event) => { event.preventDefault(); savePhone(input.value.trim()); } },
      h("label", { for: "notify-phone" }, "Phone number for texts"),
      h("p", { id: "notify-phone-hint", class: "hint" }, phone.set
        ? `Texts go to your number ending in ${phone.ending}. Enter another to change it.`
        : "In the international format, with the country code: +14155550123."),
      h("div", { class: "notify-phone-row" }, input,
        h("button", { type: "submit", class: "button" }, phone.set ? "Change" : "Save"),
        remove));
  }

  function deviceList() {
    if (!settings.devices.length) {
      return h("p", { id: "notify-devices", class: "hint" },
        "No device is registered for push notifications: our app registers your phone when "
        + "you allow notifications there.");
    }
    return h("ul", { id: "notify-devices", class: "notify-devices" },
      settings.devices.map((device) => h("li", null,
        h("span", null, PLATFORM[device.platform] || device.platform,
          h("span", { class: "hint" }, ` · since ${new Date(device.created_at)
            .toLocaleDateString()}`)),
        h("button", { type: "button", class: "button button-quiet",
          "aria-label": `Stop pushes to this ${PLATFORM[device.platform] || "device"}`,
          onclick: () => removeDevice(device.id) }, "Remove"))));
  }

  function render() {
    const root = $("#notifications");
    if (!root || !settings) return;
    root.replaceChildren(h("section", { class: "card notify-panel",
      "aria-labelledby": "notify-heading" },
      h("h3", { id: "notify-heading" }, "Notifications"),
      h("p", { class: "hint" }, "Choose what we tell you about, and how. Changes are saved "
        + "as you make them."),
      grid(),
      settings.phone.set ? null : h("p", { id: "notify-sms-hint", class: "hint" },
        "Add a phone number below to get texts."),
      h("p", { id: "notify-status", class: "notify-status", role: "status",
        "aria-live": "polite" }),
      phoneForm(),
      h("h4", null, "Devices for push"),
      deviceList()));
  }

  async function load() {
    const mine = ++seq;
    const root = $("#notifications");
    if (root && !settings) root.replaceChildren(h("p", { class: "loading" }, "Loading…"));
    try {
      const got = await api("GET", "/me/notifications");
      if (mine !== seq) return;
      settings = got;
      render();
    } catch (err) {
      if (mine !== seq || !root) return;
      root.replaceChildren(h("p", { class: "notify-status", "data-kind": "error" },
        `We could not load your notification settings. ${err.message}`));
    }
  }

  async function saveCell(box) {
    const { kind, channel } = box.dataset;
    const wanted = box.checked;
    box.disabled = true;
    try {
      settings = await api("PUT", "/me/notifications",
        { preferences: { [kind]: { [channel]: wanted } } });
      say("Saved.", "success");
    } catch (err) {
      box.checked = !wanted;
      say(err.message, "error");
    } finally {
      box.disabled = channel === "sms" && !settings.phone.set;
    }
  }

  async function savePhone(number) {
    if (!/^\+[1-9][0-9]{6,14}$/.test(number.replace(/[\s().-]/g, ""))) {
      say(FRIENDLY.validation_failed, "error");
      $("#notify-phone").focus();
      return;
    }
    try {
      settings.phone = await api("PUT", "/me/phone", { phone: number.replace(/[\s().-]/g, "") });
      render();
      say(`Saved: texts go to your number ending in ${settings.phone.ending}.`, "success");
    } catch (err) {
      say(err.message, "error");
    }
  }

  async function removePhone() {
    try {
      await api("DELETE", "/me/phone");
      await load();
      say("Number removed: texts are off.", "success");
    } catch (err) {
      say(err.message, "error");
    }
  }

  async function removeDevice(id) {
    try {
      await api("DELETE", `/me/devices/${encodeURIComponent(id)}`);
    } catch (err) {
      if (err.code !== "not_found") {
        say(err.message, "error");
        return;
      }
    }
    await load();
    say("Device removed: no more pushes to it.", "success");
  }

  // -- showing the area while signed in --------------------------------------------------------

  function accountButton() {
    const bar = $("#account-signed-in");
    if (!bar || $("#account-link")) return;
    const button = h("button", { type: "button", id: "account-link",
      class: "button button-quiet", onclick: () => {
        const area = $("#account");
        area.scrollIntoView({ behavior: "smooth", block: "start" });
        $("#account-area-heading").focus({ preventScroll: true });
      } }, "Account");
    bar.insertBefore(button, $("#logout-button"));
  }

  function follow() {
    const area = $("#account");
    if (!area) return;
    const signedIn = Boolean(tokens()) && !$("#account-signed-in").hidden;
    if (signedIn === !area.hidden) return;
    area.hidden = !signedIn;
    seq += 1;
    settings = null;
    if (signedIn) load();
    else $("#notifications").replaceChildren();
  }

  function start() {
    accountButton();
    const bar = $("#account-signed-in");
    if (bar) new MutationObserver(follow).observe(bar, { attributes: true,
      attributeFilter: ["hidden"] });
    follow();
  }

  /** app.js hands over its API call, session and h(); the area starts once the page is read. */
  function connect(deps) {
    app = deps;
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
    else start();
  }

  window.SeatserverAccount = { api, h, reload: load, connect };
})();
