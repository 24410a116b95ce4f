/* The case workspace: register tabs, popover forms, evidence drop zones, confirmation dialogs
   of the final actions, and letting HTMX swap refused actions (403/409/422) so their messages
   show next to the form.
   Everything works without this file: all panels show, forms post normally (a final action
   posted without its confirmation is refused by the server, which shows the dialog open). */
(function () {
  "use strict";

  // --- register tabs (WAI-ARIA tabs; links to the panels without JavaScript) ----------------
  var current = null;

  function tabs() { return Array.prototype.slice.call(document.querySelectorAll("#register-tabs [role=tab]")); }

  function selectTab(key, focus) {
    var all = tabs();
    if (!all.length) return;
    if (!key || !document.getElementById("panel-" + key)) key = all[0].id.replace(/^tab-/, "");
    current = key;
    all.forEach(function (tab) {
      var on = tab.id === "tab-" + key;
      tab.setAttribute("aria-selected", on ? "true" : "false");
      tab.tabIndex = on ? 0 : -1;
      if (on && focus) tab.focus();
    });
    document.querySelectorAll("[role=tabpanel]").forEach(function (panel) {
      panel.hidden = panel.id !== "panel-" + key;
    });
  }

  function initTabs() {
    var ws = document.querySelector(".ws");
    if (!ws || !tabs().length) return;
    ws.classList.add("js-tabs");
    if (!current) {
      // After a refused plain post, open the tab whose form holds the message.
      var failed = document.querySelector("[role=tabpanel] .form-error");
      if (failed) current = failed.closest("[role=tabpanel]").id.replace(/^panel-/, "");
    }
    selectTab(current, false);
  }

  document.addEventListener("click", function (event) {
    var tab = event.target.closest("#register-tabs [role=tab]");
    if (tab) {
      event.preventDefault();
      selectTab(tab.id.replace(/^tab-/, ""), true);
      return;
    }
    var link = event.target.closest("a[href^='#']");
    if (link && link.getAttribute("href").length > 1) {
      if (reveal(link.getAttribute("href").slice(1))) {
        event.preventDefault();
        history.replaceState(null, "", link.getAttribute("href"));
      }
    }
    // A click outside an open popover closes it.
    document.querySelectorAll("details.pop[open]").forEach(function (d) {
      if (!d.contains(event.target)) d.open = false;
    });
  });

  document.addEventListener("keydown", function (event) {
    var tab = event.target.closest && event.target.closest("#register-tabs [role=tab]");
    if (tab) {
      var all = tabs(), i = all.indexOf(tab), next = null;
      if (event.key === "ArrowRight") next = all[(i + 1) % all.length];
      else if (event.key === "ArrowLeft") next = all[(i - 1 + all.length) % all.length];
      else if (event.key === "Home") next = all[0];
      else if (event.key === "End") next = all[all.length - 1];
      if (next) { event.preventDefault(); selectTab(next.id.replace(/^tab-/, ""), true); }
    }
    if (event.key === "Escape") {
      var open = event.target.closest && event.target.closest("details.pop[open]");
      open = open || document.querySelector("details.pop[open]");
      if (open) { open.open = false; open.querySelector("summary").focus(); }
    }
  });

  // One popover open at a time; focus its first field when it opens.
  document.addEventListener("toggle", function (event) {
    var d = event.target;
    if (!(d instanceof HTMLDetailsElement) || !d.open || !d.classList.contains("pop")) return;
    document.querySelectorAll("details.pop[open]").forEach(function (other) {
      if (other !== d && !other.contains(d)) other.open = false;
    });
    var first = d.querySelector(".popform select, .popform textarea, .popform input:not([type=hidden]):not(.dz-input)");
    if (first) first.focus();
  }, true);

  // --- gate links: bring the item into view, switching to its register tab -------------------
  function reveal(id) {
    var el = document.getElementById(id);
    if (!el) return false;
    var panel = el.closest("[role=tabpanel]");
    if (panel) selectTab(panel.id.replace(/^panel-/, ""), false);
    if (el.tagName === "DETAILS") el.open = true;
    el.scrollIntoView({ block: "center", behavior: "smooth" });
    el.classList.remove("flash-target");
    void el.offsetWidth;
    el.classList.add("flash-target");
    if (!el.hasAttribute("tabindex") && !/^(A|BUTTON|INPUT|SELECT|TEXTAREA|SUMMARY)$/.test(el.tagName)) {
      el.setAttribute("tabindex", "-1");
    }
    el.focus({ preventScroll: true });
    return true;
  }

  // --- evidence drop zones --------------------------------------------------------------------
  function csrfToken(zone) {
    var form = zone.closest("form");
    var input = form && form.querySelector("input[name=csrfmiddlewaretoken]");
    if (input) return input.value;
    try { return JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"]; } catch (e) { return ""; }
  }

  function size(n) {
    if (n < 1024) return n + " B";
    if (n < 1024 * 1024) return (n / 1024).toFixed(1) + " KB";
    return (n / 1024 / 1024).toFixed(1) + " MB";
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function upload(zone, file) {
    var list = zone.querySelector(".dz-files");
    var item = el("li", "dz-file");
    var name = el("span", "dz-name", file.name);
    var status = el("span", "dz-size", "uploading… " + size(file.size));
    item.appendChild(name);
    item.appendChild(status);
    list.appendChild(item);
    var body = new FormData();
    body.append("file", file);
    fetch(zone.getAttribute("data-upload"), {
      method: "POST", body: body, credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(zone), "Accept": "application/json" }
    }).then(function (response) {
      return response.json().catch(function () { return { error: "Upload failed (" + response.status + ")." }; })
        .then(function (data) { return { ok: response.ok, data: data }; });
    }).then(function (result) {
      if (!result.ok) {
        status.textContent = "";
        item.appendChild(el("span", "dz-error", result.data.error || "Upload failed."));
        return;
      }
      var d = result.data;
      name.textContent = d.name;
      status.textContent = size(d.size);
      status.className = "dz-size";
      var remove = el("button", "dz-remove", "×");
      remove.type = "button";
      remove.setAttribute("aria-label", "Remove " + d.name + " from this action");
      remove.addEventListener("click", function () { item.remove(); });
      var sha = el("code", "dz-sha", "sha256 " + d.sha256);
      sha.setAttribute("data-sha256", d.sha256);
      var hidden = el("input");
      hidden.type = "hidden"; hidden.name = "evidence"; hidden.value = d.sha256;
      item.appendChild(remove);
      item.appendChild(sha);
      item.appendChild(hidden);
    }).catch(function () {
      status.textContent = "";
      item.appendChild(el("span", "dz-error", "Upload failed: the server could not be reached."));
    });
  }

  function uploadAll(zone, files) {
    Array.prototype.forEach.call(files, function (file) { upload(zone, file); });
  }

  document.addEventListener("change", function (event) {
    var input = event.target;
    if (!input.classList || !input.classList.contains("dz-input")) return;
    var zone = input.closest(".dropzone");
    uploadAll(zone, input.files);
    input.value = ""; // uploaded already: the form sends the hashes, not the bytes again
  });
  ["dragenter", "dragover"].forEach(function (type) {
    document.addEventListener(type, function (event) {
      var zone = event.target.closest && event.target.closest(".dropzone");
      if (!zone) return;
      event.preventDefault();
      zone.classList.add("over");
    });
  });
  document.addEventListener("dragleave", function (event) {
    var zone = event.target.closest && event.target.closest(".dropzone");
    if (zone && !zone.contains(event.relatedTarget)) zone.classList.remove("over");
  });
  document.addEventListener("drop", function (event) {
    var zone = event.target.closest && event.target.closest(".dropzone");
    if (!zone) return;
    event.preventDefault();
    zone.classList.remove("over");
    if (event.dataTransfer && event.dataTransfer.files.length) uploadAll(zone, event.dataTransfer.files);
  });

  // --- final actions (close, cancel, revoke a portal link): confirm in a dialog ---------------
  // The action's button opens its <dialog>, which says what will happen; only the dialog's own
  // form sends the confirmation. Dismissing it (Escape, "Keep …") changes nothing.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var id = form.getAttribute && form.getAttribute("data-confirm");
    var dialog = id && document.getElementById(id);
    if (!dialog || typeof dialog.showModal !== "function") return; // the server asks instead
    event.preventDefault();
    dialog.showModal();
  });

  function modalDialogs() {
    // A dialog the server rendered open (a post without confirmation) becomes modal.
    document.querySelectorAll("dialog.confirm[open]").forEach(function (dialog) {
      if (typeof dialog.showModal !== "function") return;
      dialog.close();
      dialog.showModal();
    });
  }

  // --- HTMX: show refused actions, keep the selected tab across swaps ------------------------
  document.addEventListener("htmx:beforeSwap", function (event) {
    var status = event.detail.xhr.status;
    if (status === 403 || status === 409 || status === 422) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
  document.addEventListener("htmx:afterSettle", function (event) {
    initTabs();
    var alert = event.target && event.target.querySelector && event.target.querySelector(".form-error[role=alert]");
    var field = alert && alert.closest("form").querySelector("[aria-invalid=true]");
    if (field) field.focus(); else if (alert) { alert.tabIndex = -1; alert.focus(); }
  });

  function start() {
    initTabs();
    modalDialogs();
    if (location.hash.length > 1) reveal(decodeURIComponent(location.hash.slice(1)));
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
