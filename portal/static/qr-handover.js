// The handover dialog's code field and the customer's QR code: a scanner types the QR code's content (it starts
// with letters; a pickup code is digits) into the focused code field. Those keys are kept out of the field and,
// on the scanner's Enter, the dialog asks the server to check the QR code for this package: it comes back with
// the code filled in, or with why the QR code is refused (another package or store, used, out of date).
// No inline scripts: the CSP allows only files from 'self'.
(function () {
  "use strict";

  var PAUSE_MS = 1500;  // a scanner types a whole code well within this; a person who slipped starts over
  var buffer = null;
  var lastKey = 0;

  function isLetter(event) {
    return event.key.length === 1 && /[A-Za-z]/.test(event.key) && !event.ctrlKey && !event.metaKey && !event.altKey;
  }

  function check(field, content) {
    var url = field.getAttribute("data-qr-url") + "?token=" + encodeURIComponent(content);
    if (window.htmx) {
      window.htmx.ajax("GET", url, { target: "#modal-content", swap: "innerHTML" });
    }
  }

  document.addEventListener("keydown", function (event) {
    var field = event.target;
    if (!field || field.id !== "otp" || !field.hasAttribute("data-qr-url")) { return; }
    var now = Date.now();
    if (buffer !== null && now - lastKey > PAUSE_MS) { buffer = null; }
    lastKey = now;
    if (buffer === null) {
      if (isLetter(event)) {
        buffer = event.key;
        event.preventDefault();
      }
      return;
    }
    if (event.key === "Enter") {
      event.preventDefault();
      var content = buffer;
      buffer = null;
      check(field, content);
    } else if (event.key.length === 1) {
      event.preventDefault();
      buffer += event.key;
    }
  }, true);

  document.addEventListener("focusout", function (event) {
    if (event.target.id === "otp") { buffer = null; }
  });

  // A scan from the scan box lands on /packages/<id>?handover=1&qr=<token>: the dialog has already been asked
  // for (data-open-modal), so the token leaves the address bar and the tablet's history.
  if (window.history && window.history.replaceState && /[?&]qr=/.test(window.location.search)) {
    var params = new URLSearchParams(window.location.search);
    params.delete("qr");
    var rest = params.toString();
    window.history.replaceState(window.history.state, "", window.location.pathname + (rest ? "?" + rest : ""));
  }
})();
