// Small behaviours of the portal's pages. No inline scripts: the CSP allows only files from 'self'.
(function () {
  "use strict";

  function modal() { return document.getElementById("modal"); }

  var MAX_TOASTS = 3;

  function showToast(message, level) {
    // The same message again (a code resent twice, a refresh that failed twice) does not stack a second toast:
    // the one on screen counts it and stays for its full time. At most MAX_TOASTS are shown, the oldest go first,
    // so toasts never cover a result screen in portrait.
    var box = document.getElementById("toasts");
    if (!box || !message) { return; }
    level = level || "success";
    var toast = null;
    Array.prototype.forEach.call(box.children, function (shown) {
      if (shown.getAttribute("data-message") === message && shown.getAttribute("data-level") === level) {
        toast = shown;
      }
    });
    if (toast) {
      var count = Number(toast.getAttribute("data-count")) + 1;
      toast.setAttribute("data-count", String(count));
      toast.textContent = message + " (\u00d7" + count + ")";
      clearTimeout(toast.portalTimer);
    } else {
      toast = document.createElement("p");
      toast.className = "toast toast-" + level;
      toast.setAttribute("role", level === "error" ? "alert" : "status");
      toast.setAttribute("data-message", message);
      toast.setAttribute("data-level", level);
      toast.setAttribute("data-count", "1");
      toast.textContent = message;
    }
    box.appendChild(toast);  // a repeated toast moves to the newest place
    while (box.children.length > MAX_TOASTS) { box.removeChild(box.firstElementChild); }
    toast.portalTimer = setTimeout(function () { toast.remove(); }, level === "error" ? 8000 : 4000);
  }

  function text(name) {
    // A user-visible text of this script: base.html renders it, translated, as data-text-<name> on #toasts.
    var box = document.getElementById("toasts");
    return box ? box.getAttribute("data-text-" + name) || "" : "";
  }

  function focusFirst(container) {
    // After an error, the field to fix first; its text is selected so the next scan or typing replaces it.
    var field = container.querySelector("[aria-invalid=true]") || container.querySelector("[autofocus]") ||
      container.querySelector("input:not([type=hidden]), select, textarea, button");
    if (!field) { return; }
    if (document.activeElement !== field) { field.focus(); }
    // Select only what the server rendered: typing that began before the form settled must not be replaced.
    if (field.select && field.value && field.value === field.defaultValue) { field.select(); }
  }

  function filterForm() { return document.getElementById("package-filters"); }

  function syncFiltersWithUrl() {
    // A page restored from htmx's history cache keeps the markup of the filters as first rendered, not
    // what was chosen since: set them from the URL, which is the truth.
    var form = filterForm();
    if (!form) { return; }
    var params = new URLSearchParams(window.location.search);
    Array.prototype.forEach.call(form.elements, function (field) {
      if (field.name && field.type !== "hidden") { field.value = params.get(field.name) || ""; }
    });
  }

  function openModal() {
    var dialog = modal();
    if (!dialog) { return; }
    if (!dialog.open) { dialog.showModal(); }
    focusFirst(dialog);
  }

  function closeModal() {
    var dialog = modal();
    if (dialog && dialog.open) { dialog.close(); }
  }

  document.addEventListener("toast", function (event) {
    showToast(event.detail.message, event.detail.level);
  });
  document.addEventListener("close-modal", closeModal);

  document.addEventListener("htmx:afterSettle", function (event) {
    var target = event.detail.target;
    if (!target) { return; }
    if (target.id === "modal-content") {
      // Open and focus the modal once htmx has wired up its form (settle), not at swap time: a scanner's
      // Enter that came earlier would post the form without htmx and leave the page.
      if (target.querySelector("form")) { openModal(); } else { closeModal(); }
    }
    var search = document.getElementById("search");
    if (search && target.id === "package-table" &&
        (!document.activeElement || !document.activeElement.matches("input, select, textarea"))) {
      // After the list changes, keep focus where a scanner expects it.
      search.focus();
    }
  });

  document.addEventListener("htmx:configRequest", function (event) {
    // Empty filters stay out of the URL: /packages?status=100, not /packages?search=&status=100&delivery_type=.
    if (event.detail.verb !== "get") { return; }
    // open=1 is for the form's native submission only (see packages/index.html); htmx knows a scan by its trigger.
    delete event.detail.parameters.open;
    Object.keys(event.detail.parameters).forEach(function (name) {
      if (event.detail.parameters[name] === "") { delete event.detail.parameters[name]; }
    });
  });

  document.addEventListener("htmx:historyRestore", syncFiltersWithUrl);

  document.addEventListener("search", function (event) {
    // Clearing the search box (its x button, or Escape) shows the whole list again.
    var field = event.target;
    if (field.id === "search" && !field.value && field.form && field.form.requestSubmit) { field.form.requestSubmit(); }
  }, true);

  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    // A search was sent (the scanner's Enter): select its text at once, so the next scan replaces it
    // instead of being appended to it, however quickly it comes.
    var search = document.getElementById("search");
    if (elt === filterForm() && search && document.activeElement === search) { search.select(); }
    // Do not refresh the list behind an open dialog or in a hidden tab.
    if (elt && elt.hasAttribute && elt.hasAttribute("data-auto-refresh")) {
      var dialog = modal();
      if (document.hidden || (dialog && dialog.open)) { event.preventDefault(); }
    }
  });

  document.addEventListener("htmx:responseError", function (event) {
    var status = event.detail.xhr ? event.detail.xhr.status : 0;
    showToast(text(status === 403 ? "forbidden" : status === 404 ? "not-found" : status === 503 ? "unavailable" : "failed"),
              "error");
  });
  document.addEventListener("htmx:sendError", function () {
    showToast(text("offline"), "error");
  });

  document.addEventListener("click", function (event) {
    var closer = event.target.closest("[data-close-modal]");
    if (closer) { event.preventDefault(); closeModal(); }
    var after = event.target.closest("[data-close-modal-after]");
    if (after) { setTimeout(closeModal, 0); }
  });

  document.addEventListener("keydown", function (event) {
    // A scanner types the barcode and presses Enter: move to the next item instead of submitting early.
    var field = event.target;
    if (event.key !== "Enter" || !field.matches || !field.matches("[data-scan-next]")) { return; }
    var fields = Array.prototype.slice.call(field.form.querySelectorAll("[data-scan-next]"));
    var index = fields.indexOf(field);
    var next = fields.slice(index + 1).concat(fields.slice(0, index)).find(function (f) { return !f.value; });
    if (next) { event.preventDefault(); next.focus(); }
  });

  function init() {
    // Runs on DOMContentLoaded and again on htmx's first "htmx:load" of the body: each element is set up once,
    // or the modal's form would be fetched twice and swapped again under the fingers of someone typing a code.
    var dialog = modal();
    if (dialog && !dialog.hasAttribute("data-ready")) {
      dialog.setAttribute("data-ready", "");
      dialog.addEventListener("close", function () {
        document.getElementById("modal-content").innerHTML = "";
      });
    }
    var opener = document.querySelector("[data-open-modal]:not([data-opened])");
    if (opener && window.htmx) {
      opener.setAttribute("data-opened", "");
      window.htmx.ajax("GET", opener.getAttribute("data-open-modal"), { target: "#modal-content", swap: "innerHTML" });
    }
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); } else { init(); }
  document.addEventListener("htmx:load", function (event) {
    // Boosted navigation swaps the body: look for a modal to open on the new page.
    if (event.detail.elt === document.body) { init(); }
  });
})();
