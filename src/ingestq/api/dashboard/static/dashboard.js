// ingestq dashboard: live refresh (SSE, polling fallback), CSRF header for htmx, row selection, confirmations.
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

  // Live refresh: elements with hx-trigger="ingestq:tick from:body" reload when something changed.
  // One EventSource per tab (body[data-live-stream]) says when: each job event fires ingestq:tick, at
  // most once per THROTTLE_MS. When the stream fails (the endpoint refuses, the server went away) the
  // tab polls every data-poll-seconds instead, and tries the stream again later. Nothing runs while the
  // tab is hidden: the stream closes, and showing the tab refreshes at once and reopens it.
  // body[data-live-mode] says which it is ("sse", "poll", "paused"), for people and for tests.
  var body = document.body;
  var seconds = parseInt(body.getAttribute("data-poll-seconds") || "5", 10);
  var streamUrl = body.getAttribute("data-live-stream");
  var streamEnabled = body.getAttribute("data-live-stream-enabled") === "true" && !!window.EventSource;
  // The first change after a quiet spell shows at once; a busy queue refreshes no more often than the
  // polling did, so an open tab costs the database no more than before (dashboards that count per
  // event or per second per session are a known way to load a busy database).
  var THROTTLE_MS = Math.max(1, seconds) * 1000;
  var RETRY_STREAM_MS = 30000;
  var SLOW_POLL_MS = 30000;  // with the stream on: ages and rates move without job events
  var timer = null;
  var source = null;
  var retryTimer = null;
  var lastTick = 0;
  var pendingTick = null;

  function live() { return !!document.querySelector("[data-live]"); }
  // A fragment marked data-live-poll shows what moves without job events (workers' heartbeats and busy
  // slots): with the stream on, it still refreshes at the polling interval, not only every 30 s.
  function slowPollMs() {
    return document.querySelector("[data-live-poll]") ? Math.max(1, seconds) * 1000 : SLOW_POLL_MS;
  }
  function setMode(mode) { body.setAttribute("data-live-mode", mode); }
  function tick() {
    if (document.hidden || !window.htmx) { return; }
    lastTick = Date.now();
    window.htmx.trigger(body, "ingestq:tick");
  }
  function throttledTick() {
    if (pendingTick !== null) { return; }
    var wait = Math.max(0, lastTick + THROTTLE_MS - Date.now());
    pendingTick = window.setTimeout(function () { pendingTick = null; tick(); }, wait);
  }
  function startPolling(everyMs) {
    stopPolling();
    if (live()) { timer = window.setInterval(tick, everyMs || Math.max(1, seconds) * 1000); }
  }
  function fallBack() {
    if (body.getAttribute("data-live-mode") !== "poll") { startPolling(); setMode("poll"); }
  }
  function stopPolling() {
    if (timer !== null) { window.clearInterval(timer); timer = null; }
  }
  function closeStream() {
    if (source !== null) { source.close(); source = null; }
    if (retryTimer !== null) { window.clearTimeout(retryTimer); retryTimer = null; }
  }
  function openStream() {
    if (!streamEnabled || !streamUrl || source !== null || document.hidden || !live()) { return false; }
    var opened = new window.EventSource(streamUrl);
    source = opened;
    opened.addEventListener("open", function () {
      if (source !== opened) { return; }
      startPolling(slowPollMs());
      setMode("sse");
    });
    ["job", "progress", "reset"].forEach(function (name) {
      opened.addEventListener(name, throttledTick);
    });
    opened.addEventListener("bye", function () {
      // the server is going away: poll until it is back, then follow again
      closeStream();
      fallBack();
      retryTimer = window.setTimeout(function () { retryTimer = null; openStream(); }, RETRY_STREAM_MS);
    });
    opened.addEventListener("error", function () {
      if (source !== opened) { return; }
      fallBack();  // reconnecting or refused: poll meanwhile
      if (opened.readyState === window.EventSource.CLOSED) {
        source = null;  // refused for good (401, 404, 503...): try again later
        retryTimer = window.setTimeout(function () { retryTimer = null; openStream(); }, RETRY_STREAM_MS);
      }
    });
    return true;
  }
  function resume() {
    if (!live()) { return; }
    tick();  // what changed while hidden
    if (!openStream() && source === null) { fallBack(); }
  }
  function pause() {
    stopPolling();
    closeStream();
    if (pendingTick !== null) { window.clearTimeout(pendingTick); pendingTick = null; }
    setMode("paused");
  }
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) { pause(); } else { resume(); }
  });
  // A fragment that stopped being live (a finished job) leaves nothing to follow: free the stream.
  document.addEventListener("htmx:afterSettle", function () {
    if (!live()) { stopPolling(); closeStream(); setMode("idle"); }
  });
  if (!document.hidden && live()) {
    if (!openStream()) { fallBack(); }
  }
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
