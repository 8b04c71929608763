/* Seatserver web page: the privacy panel of the account area (#privacy).
 *
 * "Download my data" saves everything we hold about the customer as a JSON file
 * (GET /api/v1/me/export). "Delete my account" opens a dialog that explains what goes and
 * what stays, asks for the password again, and calls DELETE /api/v1/me. Deletion is refused
 * while a hold, a payment or a booking of a show to come is in progress: the dialog says so
 * and points to My bookings. Once deleted, the session is dropped and the page signs out.
 *
 * Shown while the account area is (account.js shows #account while someone is signed in);
 * API calls go through window.SeatserverAccount.api, which refreshes an expired token.
 */
"use strict";

(() => {
  const SESSION_KEY = "seatserver.session";
  const FRIENDLY = {
    invalid_credentials: "That password is not right.",
    staff_account: "An operations account cannot delete itself: ask another admin.",
    rate_limited: "Too many tries. Wait a minute and try again.",
    network_error: "Cannot reach the server. Check your connection and try again.",
  };

  const $ = (selector, root = document) => root.querySelector(selector);

  const h = (...args) => window.SeatserverAccount.h(...args);

  function say(text, kind = "info") {
    const line = $("#privacy-status");
    if (!line) return;
    line.dataset.kind = kind;
    line.textContent = text;
  }

  function plural(count, one, many) {
    return `${count} ${count === 1 ? one : many}`;
  }

  // -- download ---------------------------------------------------------------------------------

  async function download(button) {
    button.disabled = true;
    say("Gathering your data…");
    try {
      const data = await window.SeatserverAccount.api("GET", "/me/export");
      const blob = new Blob([JSON.stringify(data, null, 1)], { type: "application/json" });
      const link = h("a", {
        href: URL.createObjectURL(blob),
        download: `seatserver-my-data-${new Date().toISOString().slice(0, 10)}.json`,
      });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
      say("Your data is downloaded: one JSON file.", "success");
    } catch (err) {
      say(`We could not prepare your data. ${err.message}`, "error");
    } finally {
      button.disabled = false;
    }
  }

  // -- deletion ---------------------------------------------------------------------------------

  function blockedText(details) {
    const parts = [];
    if (details.bookings && details.bookings.length) {
      parts.push(plural(details.bookings.length, "booking of a show to come",
        "bookings of shows to come"));
    }
    if (details.holds && details.holds.length) {
      parts.push(plural(details.holds.length, "seat hold", "seat holds"));
    }
    if (details.payments && details.payments.length) {
      parts.push(plural(details.payments.length, "payment in progress", "payments in progress"));
    }
    return `You still have ${parts.join(", ") || "something in progress"}. Cancel them in `
      + "My bookings (refunds follow the usual policy), or wait until the shows are over, "
      + "then delete your account.";
  }

  /** DELETE /me with the password; resolves to null when deleted, else an error message. */
  async function deleteAccount(password) {
    try {
      await window.SeatserverAccount.api("DELETE", "/me", { password });
      return null;
    } catch (err) {
      if (err.code === "deletion_blocked") return blockedText(err.details || {});
      return FRIENDLY[err.code] || err.message || "Something went wrong.";
    }
  }

  function dialog() {
    const password = h("input", {
      id: "privacy-password", name: "password", type: "password",
      autocomplete: "current-password", required: true, maxlength: 128,
      "aria-describedby": "privacy-dialog-error",
    });
    const error = h("p", { id: "privacy-dialog-error", class: "privacy-error", role: "alert" });
    const confirm = h("button", { type: "submit", class: "button button-danger",
      id: "privacy-confirm" }, "Delete my account");
    const box = h("dialog", { id: "privacy-dialog", class: "privacy-dialog",
      "aria-labelledby": "privacy-dialog-heading" },
      h("form", { method: "dialog", class: "stack", novalidate: true,
        onsubmit: async (event) => {
          event.preventDefault();
          if (!password.value) {
            error.textContent = "Enter your password to confirm.";
            password.focus();
            return;
          }
          confirm.disabled = true;
          error.textContent = "";
          try {
            const refused = await deleteAccount(password.value);
            if (refused) {
              error.textContent = refused;
              password.select();
              return;
            }
            box.close();
            deleted();
          } catch (err) {
            error.textContent = err.message || "Something went wrong.";
          } finally {
            confirm.disabled = false;
          }
        } },
        h("h3", { id: "privacy-dialog-heading" }, "Delete your account?"),
        h("p", null, "Your name, email, phone number, devices, notification settings, "
          + "conversations and sessions are erased, and you are signed out everywhere. This "
          + "cannot be undone."),
        h("p", { class: "hint" }, "Your past bookings and payments stay in our books without "
          + "anything that says who you are, as the law and the theaters' accounts require. "
          + "You can register again with the same email later, as a new account."),
        h("label", { for: "privacy-password" }, "Your password"),
        password,
        error,
        h("div", { class: "privacy-actions" },
          h("button", { type: "button", class: "button button-quiet",
            onclick: () => box.close() }, "Keep my account"),
          confirm)));
    box.addEventListener("close", () => {
      password.value = "";
      error.textContent = "";
      $("#privacy-delete")?.focus();
    });
    return box;
  }

  function deleted() {
    sessionStorage.removeItem(SESSION_KEY);
    const logout = $("#logout-button");
    if (logout) logout.click(); // app.js drops the (already removed) session and signs out
    const line = $("#message");
    if (line) {
      line.dataset.kind = "success";
      line.textContent = "Your account is deleted. Thank you for having been with us.";
      line.classList.add("message-shown");
    }
  }

  // -- the panel --------------------------------------------------------------------------------

  function render() {
    const root = $("#privacy");
    if (!root) return;
    const box = dialog();
    root.replaceChildren(h("section", { class: "card privacy-panel",
      "aria-labelledby": "privacy-heading" },
      h("h3", { id: "privacy-heading" }, "Your data"),
      h("p", { class: "hint" }, "Everything we keep about you, in one file: your account, "
        + "bookings, payments, settings and conversations."),
      h("button", { type: "button", class: "button", id: "privacy-download",
        onclick: (event) => download(event.currentTarget) }, "Download my data"),
      h("h4", null, "Delete your account"),
      h("p", { class: "hint" }, "Erase your personal data and close your account."),
      h("button", { type: "button", class: "button button-danger", id: "privacy-delete",
        onclick: () => { box.showModal(); $("#privacy-password").focus(); } },
      "Delete my account…"),
      h("p", { id: "privacy-status", class: "privacy-status", role: "status",
        "aria-live": "polite" }),
      box));
  }

  function follow() {
    const area = $("#account");
    const root = $("#privacy");
    if (!area || !root) return;
    if (area.hidden) root.replaceChildren();
    else if (!$("#privacy-download")) render();
  }

  function start() {
    const area = $("#account");
    if (area) new MutationObserver(follow).observe(area, { attributes: true,
      attributeFilter: ["hidden"] });
    follow();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
