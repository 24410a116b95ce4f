// Passkeys (WebAuthn) for the sign-in and Settings → Security → Two-factor (offboard.mfa).
// The server sends options as JSON with binary fields in base64url; they become ArrayBuffers
// for the browser, and what the authenticator answers goes back as base64url JSON.
(function () {
  "use strict";

  function toBuffer(text) {
    var s = text.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    var raw = atob(s);
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out.buffer;
  }

  function toText(buffer) {
    var bytes = new Uint8Array(buffer);
    var s = "";
    for (var i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function csrfToken() {
    var field = document.querySelector("input[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  }

  async function post(url, body) {
    var response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {"X-CSRFToken": csrfToken(), "Content-Type": "application/json", "Accept": "application/json"},
      body: JSON.stringify(body === undefined ? {} : body),
    });
    var data;
    try { data = await response.json(); } catch (e) { data = {}; }
    if (!response.ok) {
      var error = new Error(data.error || "The server answered " + response.status + ". Try again.");
      error.redirect = data.redirect;
      throw error;
    }
    return data;
  }

  function descriptors(list) {
    (list || []).forEach(function (c) { c.id = toBuffer(c.id); });
  }

  function explain(error) {
    if (error.name === "NotAllowedError") return "The passkey request was cancelled or timed out. Try again, or use another way in.";
    if (error.name === "InvalidStateError") return "This device already holds a passkey for your account.";
    if (error.name === "SecurityError") return "Passkeys work only at this site's own address (HTTPS, or localhost).";
    return error.message || String(error);
  }

  function showError(id, message) {
    var el = document.getElementById(id);
    if (!el) return;
    el.textContent = message;
    el.hidden = !message;
  }

  function assertionJSON(cred) {
    var r = cred.response;
    return {
      id: cred.id,
      rawId: toText(cred.rawId),
      type: cred.type,
      authenticatorAttachment: cred.authenticatorAttachment || null,
      clientExtensionResults: cred.getClientExtensionResults(),
      response: {
        authenticatorData: toText(r.authenticatorData),
        clientDataJSON: toText(r.clientDataJSON),
        signature: toText(r.signature),
        userHandle: r.userHandle ? toText(r.userHandle) : null,
      },
    };
  }

  function attestationJSON(cred) {
    var r = cred.response;
    return {
      id: cred.id,
      rawId: toText(cred.rawId),
      type: cred.type,
      authenticatorAttachment: cred.authenticatorAttachment || null,
      clientExtensionResults: cred.getClientExtensionResults(),
      response: {
        clientDataJSON: toText(r.clientDataJSON),
        attestationObject: toText(r.attestationObject),
        transports: r.getTransports ? r.getTransports() : [],
      },
    };
  }

  // Sign in (or pass the second step) with a passkey: button[data-passkey-get].
  document.querySelectorAll("[data-passkey-get]").forEach(function (button) {
    if (!window.PublicKeyCredential) return;
    button.hidden = false;
    button.addEventListener("click", async function () {
      showError(button.dataset.error, "");
      button.disabled = true;
      try {
        var options = await post(button.dataset.options);
        options.challenge = toBuffer(options.challenge);
        descriptors(options.allowCredentials);
        var cred = await navigator.credentials.get({publicKey: options});
        var done = await post(button.dataset.verify, assertionJSON(cred));
        window.location.assign(done.redirect);
      } catch (error) {
        if (error.redirect) { window.location.assign(error.redirect); return; }
        showError(button.dataset.error, explain(error));
        button.disabled = false;
      }
    });
  });

  // Register a passkey: form[data-passkey-create].
  document.querySelectorAll("form[data-passkey-create]").forEach(function (form) {
    if (!window.PublicKeyCredential) {
      showError(form.dataset.error, "This browser cannot make passkeys.");
      return;
    }
    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      var button = form.querySelector("button[type=submit]");
      showError(form.dataset.error, "");
      button.disabled = true;
      try {
        var options = await post(form.dataset.options);
        options.challenge = toBuffer(options.challenge);
        options.user.id = toBuffer(options.user.id);
        descriptors(options.excludeCredentials);
        var cred = await navigator.credentials.create({publicKey: options});
        var name = form.querySelector("input[name=name]").value;
        var done = await post(form.action, {name: name, credential: attestationJSON(cred)});
        if (done.recovery_codes && done.recovery_codes.length) {
          var box = document.getElementById("passkey-recovery");
          var list = box.querySelector("ol");
          done.recovery_codes.forEach(function (code) {
            var item = document.createElement("li");
            item.textContent = code;
            list.appendChild(item);
          });
          box.hidden = false;
          form.hidden = true;
          box.focus();
        } else {
          window.location.assign(form.dataset.done);
        }
      } catch (error) {
        showError(form.dataset.error, explain(error));
        button.disabled = false;
      }
    });
  });
})();
