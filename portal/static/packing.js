// The packing screen: scans go to the server one after another (none dropped, none reordered), the field is
// cleared at once for the next scan, and each answer beeps or vibrates where the tablet allows.
(function () {
  "use strict";

  var queue = Promise.resolve();
  var audio = null;

  function form() { return document.getElementById("packing-scan"); }
  function field() { return document.getElementById("packing-barcode"); }

  function beep(ok) {
    // A short tone: high for a tick, low and longer for a refused scan. Silently nothing where not allowed.
    try {
      var Context = window.AudioContext || window.webkitAudioContext;
      if (!Context) { return; }
      audio = audio || new Context();
      var osc = audio.createOscillator();
      var gain = audio.createGain();
      osc.frequency.value = ok ? 1320 : 220;
      gain.gain.value = 0.08;
      osc.connect(gain);
      gain.connect(audio.destination);
      osc.start();
      osc.stop(audio.currentTime + (ok ? 0.08 : 0.3));
    } catch (e) { /* no sound on this device */ }
  }

  function buzz(ok) {
    if (navigator.vibrate) { navigator.vibrate(ok ? 40 : [80, 60, 80]); }
  }

  function feedback(ok) {
    var input = field();
    beep(ok);
    buzz(ok);
    if (input) {
      if (ok) { input.removeAttribute("aria-invalid"); } else { input.setAttribute("aria-invalid", "true"); }
    }
    document.body.setAttribute("data-last-scan", ok ? "ok" : "refused");
  }

  function send(url, values) {
    // One request at a time, in the order asked: a tap during a scan cannot overtake it and leave the
    // counter showing the older answer.
    var token = form().querySelector("input[name=csrf_token]").value;
    values.csrf_token = token;
    queue = queue.then(function () {
      return htmx.ajax("POST", url, {
        target: "#packing-feedback", swap: "innerHTML", values: values, headers: { "X-CSRFToken": token },
      });
    }).catch(function () { /* the toast from portal.js says what failed; the next scan still goes */ });
  }

  document.addEventListener("submit", function (event) {
    var target = event.target;
    if (!target.matches || !target.matches("form[data-packing-queue]")) { return; }
    event.preventDefault();
    if (target === form()) {
      var input = field();
      var barcode = input.value.trim();
      input.value = "";
      input.focus();
      if (barcode) { send(target.action, { barcode: barcode }); }
    } else {
      send(target.action, {});
    }
  });

  document.addEventListener("packing-tick", function () { feedback(true); });
  document.addEventListener("packing-refused", function () { feedback(false); });

  document.addEventListener("htmx:afterSwap", function () {
    // After a tap on a line, the next scan still lands in the field (unless the tap opened a question).
    var input = field();
    if (input && !document.querySelector(".packing-confirm") && document.activeElement !== input &&
        !(document.activeElement && document.activeElement.closest(".packing-finish"))) {
      input.focus();
    }
  });
})();
