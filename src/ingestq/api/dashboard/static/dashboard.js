// ingestq dashboard: live refresh, CSRF header for htmx, row selection, confirmations.
// Loaded from the page's own origin; no inline script anywhere, so the CSP forbids them all.
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  // Every htmx request carries the session's CSRF token (POSTs need it; GETs ignore it).
  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRF-Token"] = csrfToken();
  });

  // Live refresh: elements with hx-trigger="ingestq:tick from:body" reload every data-poll-seconds,
  // only while the tab is visible, and at once when it becomes visible again. A later SSE stream
  // (body[data-live-stream]) can fire the same event instead of the timer.
  var seconds = parseInt(document.body.getAttribute("data-poll-seconds") || "5", 10);
  var timer = null;
  function tick() {
    if (document.hidden || !window.htmx) { return; }
    window.htmx.trigger(document.body, "ingestq:tick");
  }
  function start() {
    if (timer === null && document.querySelector('[data-live]')) {
      timer = window.setInterval(tick, Math.max(1, seconds) * 1000);
    }
  }
  function stop() {
    if (timer !== null) { window.clearInterval(timer); timer = null; }
  }
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) { stop(); } else { tick(); start(); }
  });
  if (!document.hidden) { start(); }
  var note = document.querySelector("[data-live-note]");
  if (note) {
    document.addEventListener("visibilitychange", function () {
      note.classList.toggle("paused", document.hidden);
    });
  }

  // Row selection on the jobs page: the buttons say how many rows they act on before anyone clicks.
  function refreshSelection(form) {
    var count = form.querySelectorAll('input[name="ids"]:checked').length;
    form.querySelectorAll("[data-selected-label]").forEach(function (button) {
      button.textContent = button.getAttribute("data-selected-label").replace("{n}", String(count));
      button.disabled = count === 0;
    });
  }
  document.querySelectorAll("[data-select-form]").forEach(function (form) {
    var all = form.querySelector("[data-select-all]");
    if (all) {
      all.addEventListener("change", function () {
        form.querySelectorAll('input[name="ids"]').forEach(function (box) { box.checked = all.checked; });
        refreshSelection(form);
      });
    }
    form.addEventListener("change", function () { refreshSelection(form); });
    refreshSelection(form);
  });

  // Destructive forms ask first.
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
    });
  });
})();
