// Lessons: study-time heartbeats while the page is visible; the editor's live preview.
// Reading a lesson and marking it done work without this file.
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.getAttribute("content") : "";

  function heartbeats(root) {
    var url = root.getAttribute("data-progress-url");
    var required = parseInt(root.getAttribute("data-required"), 10) || 0;
    var interval = (parseInt(root.getAttribute("data-interval"), 10) || 30) * 1000;
    var visibleSince = document.visibilityState === "visible" ? Date.now() : null;
    var banked = 0;

    function collect() {
      if (visibleSince !== null) {
        banked += Date.now() - visibleSince;
        visibleSince = document.visibilityState === "visible" ? Date.now() : null;
      }
    }
    function send() {
      collect();
      var seconds = Math.floor(banked / 1000);
      if (seconds < 1) { return; }
      banked -= seconds * 1000;
      fetch(url, {
        method: "POST", credentials: "same-origin", keepalive: true,
        headers: {"Content-Type": "application/json", "X-CSRFToken": csrf},
        body: JSON.stringify({seconds: seconds})
      }).then(function (r) { return r.ok ? r.json() : null; }).then(function (data) {
        if (!data) { return; }
        var minutes = document.querySelector("[data-credited-minutes]");
        if (minutes) { minutes.textContent = Math.floor(data.credited_seconds / 60); }
        var hint = document.querySelector("[data-done-hint]");
        if (hint && data.credited_seconds >= required) { hint.hidden = true; }
      }).catch(function () { /* a weak signal: the next beat carries the time */ });
    }
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "visible") {
        visibleSince = Date.now();
      } else {
        send();
        visibleSince = null;
      }
    });
    window.setInterval(function () {
      if (document.visibilityState === "visible") { send(); }
    }, interval);
  }

  function preview(editor) {
    var url = editor.getAttribute("data-preview-url");
    var textarea = editor.querySelector("textarea");
    var pane = editor.querySelector("[data-preview]");
    var timer = null;
    var form = textarea.form;
    function refresh() {
      var body = new FormData();
      body.append("body", textarea.value);
      var token = form && form.querySelector("input[name=csrf_token]");
      body.append("csrf_token", token ? token.value : csrf);
      fetch(url, {method: "POST", credentials: "same-origin", body: body, headers: {"X-CSRFToken": csrf}})
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) { if (html !== null) { pane.innerHTML = html; } })  // sanitised by the server
        .catch(function () {});
    }
    textarea.addEventListener("input", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(refresh, 400);
    });
  }

  var lesson = document.querySelector("[data-lesson][data-progress-url]");
  if (lesson && lesson.getAttribute("data-completed") !== "1") { heartbeats(lesson); }
  var editor = document.querySelector("[data-editor]");
  if (editor) { preview(editor); }
})();
