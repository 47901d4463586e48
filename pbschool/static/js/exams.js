// The exam sitting page: countdown from the server's deadline, answer card, flags, one question per
// screen on phones. Every answer is written on the device first (exam-outbox.js) and then sent
// through the API; what is waiting goes out when the connection returns, the page becomes visible,
// on a timer, and when the page is opened again, closed in between or not. A service worker
// (/attempts/sw.js) keeps the page so that it opens without a signal.
// Without this file the page still works: a plain form that saves and submits.
(function () {
  "use strict";
  var form = document.getElementById("paper");
  if (!form) return;
  var box = window.pbschoolOutbox;
  var ds = form.dataset;
  var attemptId = ds.attempt;
  var user = ds.user;
  var api = ds.api;
  var resultUrl = ds.resultUrl;
  var deadline = Date.parse(ds.deadline);
  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.getAttribute("content") : "";
  var sections = Array.prototype.slice.call(form.querySelectorAll(".question"));
  var byQid = {};
  sections.forEach(function (s) { byQid[s.dataset.qid] = s; });
  var stateEl = document.getElementById("save-state");
  var pendingEl = document.getElementById("pending-count");
  var countdownEl = document.getElementById("countdown");
  var warningEl = document.getElementById("time-warning");
  var lateEl = document.getElementById("late-note");
  var card = document.getElementById("answer-card");
  var T = JSON.parse(document.getElementById("exam-strings").textContent);
  var inflight = false;
  var failures = 0;
  var retryTimer = null;
  var finished = false;     // the member submitted, or the time is up: no more sitting
  var timeIsUp = false;     // the server said time_up: what still waits is sent once, then counted late
  var signedOut = false;
  var refused = {};
  var warned = {};
  var current = 0;
  var flagKey = "pbschool-flags-" + attemptId;
  var flags = {};
  try { flags = JSON.parse(window.localStorage.getItem(flagKey) || "{}"); } catch (e) { flags = {}; }

  form.classList.add("js-on");

  // The server's clock as this page last heard it. A copy served by the service worker carries the
  // time it was made, so each rendering's offset is remembered and reused when it is shown again.
  var clockKey = "pbschool-clock:" + user + ":" + attemptId;
  function readClocks() { try { return JSON.parse(window.localStorage.getItem(clockKey) || "{}") || {}; } catch (e) { return {}; } }
  function noteClock(serverNowText, offsetMs) {
    var clocks = readClocks();
    clocks[serverNowText] = offsetMs;
    var names = Object.keys(clocks).sort();
    while (names.length > 6) delete clocks[names.shift()];
    try { window.localStorage.setItem(clockKey, JSON.stringify(clocks)); } catch (e) { /* full or private */ }
  }
  var offset = readClocks()[ds.serverNow];
  if (typeof offset !== "number") { offset = Date.parse(ds.serverNow) - Date.now(); noteClock(ds.serverNow, offset); }

  function serverNow() { return Date.now() + offset; }
  var deadlineSeen = false;  // the countdown reached zero (it rounds: the last half second counts)
  function over() { return deadlineSeen || serverNow() >= deadline; }

  function valueOf(section) {
    var type = section.dataset.type;
    var inputs = section.querySelectorAll("input, textarea");
    var i;
    if (type === "multiple") {
      var chosen = [];
      for (i = 0; i < inputs.length; i++) if (inputs[i].checked) chosen.push(inputs[i].value);
      return chosen.length ? chosen.sort() : null;
    }
    if (type === "blank") {
      var texts = [], any = false;
      for (i = 0; i < inputs.length; i++) { texts.push(inputs[i].value); if (inputs[i].value.trim()) any = true; }
      return any ? texts : null;
    }
    if (type === "short") {
      return inputs[0].value.trim() ? inputs[0].value : null;
    }
    for (i = 0; i < inputs.length; i++) {
      if (inputs[i].checked) {
        if (type === "truefalse") return inputs[i].value === "true";
        return inputs[i].value;
      }
    }
    return null;
  }

  function setValue(section, value) {
    var type = section.dataset.type;
    var inputs = section.querySelectorAll("input, textarea");
    for (var i = 0; i < inputs.length; i++) {
      var input = inputs[i];
      if (type === "multiple") input.checked = Array.isArray(value) && value.indexOf(input.value) >= 0;
      else if (type === "blank") input.value = Array.isArray(value) && typeof value[i] === "string" ? value[i] : "";
      else if (type === "short") input.value = typeof value === "string" ? value : "";
      else if (type === "truefalse") input.checked = value !== null && String(value) === input.value;
      else input.checked = value === input.value;
    }
  }

  // -- the device's copy --------------------------------------------------------------------

  function entry(qid) { return box.get(user, attemptId, qid); }

  function waitingQids() {
    var all = box.all(user, attemptId);
    return Object.keys(all).filter(function (q) { return all[q] && all[q].s === 0 && byQid[q]; })
      .sort(function (a, b) { return all[a].at - all[b].at; });
  }

  function keep(section) {
    var qid = section.dataset.qid;
    box.put(user, attemptId, qid, {v: valueOf(section), at: serverNow(), n: +section.dataset.position, s: 0});
    if (refused[qid]) { delete refused[qid]; showError(qid, ""); }
    paintCell(section);
    paintBar();
  }

  // -- what the member sees ------------------------------------------------------------------

  function cellFor(section) { return card && card.querySelector('[data-index="' + section.dataset.index + '"]'); }

  function paintCell(section) {
    var cell = cellFor(section);
    if (!cell) return;
    var e = entry(section.dataset.qid);
    var answered = valueOf(section) !== null;
    var waiting = !!(e && e.s === 0);
    cell.classList.toggle("answered", answered);
    cell.classList.toggle("waiting", waiting);
    cell.classList.toggle("saved", answered && !waiting && !(e && e.s === 3));
    cell.classList.toggle("refused", !!refused[section.dataset.qid]);
    cell.classList.toggle("late", !!(e && e.s === 3));
    cell.classList.toggle("flagged", !!flags[section.dataset.qid]);
    cell.classList.toggle("current", form.classList.contains("paged") && +section.dataset.index === current);
    paintLegend();
  }

  function paintAll() { sections.forEach(paintCell); }

  function paintLegend() {
    ["refused", "late"].forEach(function (kind) {
      var item = document.querySelector(".card-legend .legend-" + kind);
      if (item) item.hidden = !card.querySelector(".cell." + kind);
    });
  }

  function paintBar() {
    var n = waitingQids().length;
    pendingEl.textContent = n ? T.waiting.replace("{n}", n) : "";
    pendingEl.hidden = !n;
    if (inflight) return;
    if (!n) setState(failures ? "retry" : "saved");
    else if (!navigator.onLine) setState("offline");
    else setState(failures ? "retry" : "saving");
  }

  function setState(kind) {
    stateEl.className = "save-state " + kind;
    stateEl.textContent = T[kind];
  }

  function showError(qid, message) {
    var section = byQid[qid];
    if (!section) return;
    var el = section.querySelector(".q-error");
    el.textContent = message || "";
    el.hidden = !message;
  }

  function numbers(qids) {
    return qids.map(function (q) { return +byQid[q].dataset.position; }).sort(function (a, b) { return a - b; }).join("、");
  }

  // After the deadline: which answers did not reach the server in time, said plainly.
  function paintLate() {
    if (!timeIsUp && !(finished && over())) return;
    if (!form.classList.contains("over")) {
      // nothing more to answer: the inputs show what was given, the submit button goes
      form.classList.add("over");
      Array.prototype.forEach.call(form.querySelectorAll(".question input, .question textarea"), function (input) { input.disabled = true; });
    }
    var all = box.all(user, attemptId);
    var waiting = waitingQids();
    var late = Object.keys(all).filter(function (q) { return all[q] && all[q].s === 3 && byQid[q]; });
    var parts = [];
    if (waiting.length) parts.push(T.late_waiting.replace("{list}", numbers(waiting)));
    if (late.length) parts.push(T.late_sent.replace("{list}", numbers(late)));
    if (!parts.length) { lateEl.hidden = true; return; }
    lateEl.querySelector(".late-text").textContent = parts.join(" ");
    lateEl.hidden = false;
  }

  // -- sending ---------------------------------------------------------------------------------

  function later(ms) {
    clearTimeout(retryTimer);
    retryTimer = setTimeout(flush, ms);
  }

  function backoff() {
    failures += 1;
    paintBar();
    later(Math.min(30000, 1000 * Math.pow(2, Math.min(failures, 5))));
  }

  function flush() {
    if (inflight || signedOut) return;
    var qids = waitingQids();
    paintBar();
    if (!qids.length) { failures = 0; paintBar(); paintLate(); afterQueue(); return; }
    var qid = qids[0];
    var sent = entry(qid);
    inflight = true;
    setState(failures ? "retry" : "saving");
    box.send(api, csrf, attemptId, qid, sent.v).then(function (response) {
      inflight = false;
      var status = response.status;
      var now = entry(qid);
      var unchanged = now && now.at === sent.at;   // not given again while this was on its way
      if (response.ok) {
        failures = 0;
        showError(qid, "");
        response.json().then(function (body) {
          var at = Date.parse(body && body.saved_at);
          if (unchanged) box.put(user, attemptId, qid, {v: sent.v, at: isNaN(at) ? sent.at : Math.max(at, sent.at), n: sent.n, s: 1});
        }, function () {
          if (unchanged) box.put(user, attemptId, qid, {v: sent.v, at: sent.at, n: sent.n, s: 1});
        }).then(function () { paintCell(byQid[qid]); flush(); });
        return;
      }
      if (status === 409) {
        // time_up (or submitted elsewhere): the server keeps what arrives now as late, never counted.
        timeIsUp = true;
        finished = true;
        if (unchanged) box.put(user, attemptId, qid, {v: sent.v, at: sent.at, n: sent.n, s: 3});
        response.json().then(function (body) {
          var error = body && body.error;
          warningEl.textContent = error && error.code !== "time_up" && error.message || T.time_up_done;
        }, function () { warningEl.textContent = T.time_up_done; }).then(function () {
          warningEl.hidden = false;
          paintCell(byQid[qid]);
          paintLate();
          flush();
        });
        return;
      }
      if (status === 401 || status === 403) { loggedOut(); return; }
      if (status >= 500 || status === 429 || status === 408) { backoff(); return; }
      response.json().then(function (body) { return body && body.error; }, function () { return null; }).then(function (error) {
        if (error && error.code === "csrf") { freshToken(); return; }
        if (status === 404) { checkOwner(qid, sent, error); return; }
        refuse(qid, sent, error);
      });
    }, function () {
      inflight = false;
      backoff();
    });
  }

  // The server refused this answer (its shape, a question not in the attempt): it is shown on the
  // question and dropped, never retried.
  function refuse(qid, sent, error) {
    var now = entry(qid);
    if (now && now.at === sent.at) box.remove(user, attemptId, qid);
    refused[qid] = true;
    showError(qid, (error && error.message) || T.refused);
    paintCell(byQid[qid]);
    flush();
  }

  // 404 means the question is not in this attempt, unless the attempt itself is not this session's
  // (someone else signed in on this phone): then nothing is dropped, and nothing is sent.
  function checkOwner(qid, sent, error) {
    fetch(api + "/attempts/" + attemptId, {credentials: "same-origin"}).then(function (response) {
      if (response.ok) refuse(qid, sent, error);
      else if (response.status === 404 || response.status === 401 || response.status === 403) loggedOut();
      else backoff();
    }, backoff);
  }

  function loggedOut() {
    signedOut = true;
    setState("retry");
    warningEl.textContent = T.logged_out;
    warningEl.hidden = false;
    setTimeout(function () { signedOut = false; flush(); }, 15000);
  }

  // A copy of the page from before a new sign-in carries the old session's token: fetch the page
  // again for the current one.
  function freshToken() {
    fetch(window.location.pathname, {credentials: "same-origin"}).then(function (response) {
      if (!response.ok || response.redirected) throw new Error("no page");
      return response.text();
    }).then(function (html) {
      var doc = new DOMParser().parseFromString(html, "text/html");
      var fresh = doc.querySelector('meta[name="csrf-token"]');
      var paper = doc.getElementById("paper");
      if (!fresh || !paper || paper.dataset.user !== user) throw new Error("another account");
      if (fresh.getAttribute("content") === csrf) throw new Error("same token");
      csrf = fresh.getAttribute("content");
      flush();
    }).catch(loggedOut);
  }

  // -- finishing -------------------------------------------------------------------------------

  var submitting = false;
  function afterQueue() {
    if (!finished || submitting || inflight || waitingQids().length) return;
    submitting = true;
    fetch(api + "/attempts/" + attemptId + "/submit", {
      method: "POST", credentials: "same-origin", headers: {"X-CSRFToken": csrf}
    }).then(function (response) {
      submitting = false;
      if (response.ok) { done(); return; }
      if (response.status === 400 || response.status === 401 || response.status === 403) { loggedOut(); return; }
      HTMLFormElement.prototype.submit.call(form);
    }, function () {
      // No connection: the answers stay on the device; the page tries again when it returns.
      submitting = false;
      warningEl.textContent = timeIsUp || over() ? T.offline_time_up : T.offline_submit;
      warningEl.hidden = false;
      if (!(timeIsUp || over())) finished = false;
    });
  }

  function done() {
    var all = box.all(user, attemptId);
    var late = Object.keys(all).filter(function (q) { return all[q] && all[q].s === 3; });
    box.dropPage(window.location.href.split("#")[0]);
    if (late.length) {
      // the page stays, saying which answers came too late, with the way to the result
      paintLate();
      lateEl.querySelector("a").hidden = false;
      box.forget(user, attemptId);
      return;
    }
    box.forget(user, attemptId);
    warningEl.textContent = T.time_up;
    if (over()) warningEl.hidden = false;
    setTimeout(function () { window.location.href = resultUrl; }, over() ? 1500 : 0);
  }

  function submitNow() {
    if (submitting) return;
    finished = true;
    sections.forEach(function (s) { if (timers[s.dataset.qid]) { clearTimeout(timers[s.dataset.qid]); timers[s.dataset.qid] = null; keep(s); } });
    if (!navigator.onLine) {
      warningEl.textContent = over() ? T.offline_time_up : T.offline_submit;
      warningEl.hidden = false;
      if (!over()) finished = false;
      paintLate();
      return;
    }
    paintLate();
    flush();
    // A queue that does not drain (a server down) must not hold the member's own submit for ever.
    setTimeout(function () {
      if (finished && !submitting && waitingQids().length && !over()) {
        warningEl.textContent = T.offline_submit;
        warningEl.hidden = false;
        finished = false;
      }
    }, 15000);
  }

  // -- input -----------------------------------------------------------------------------------

  var timers = {};
  form.addEventListener("change", function (event) {
    var section = event.target.closest(".question");
    if (!section || finished) return;
    clearTimeout(timers[section.dataset.qid]);
    timers[section.dataset.qid] = null;
    keep(section);
    flush();
  });
  form.addEventListener("input", function (event) {
    var section = event.target.closest(".question");
    if (!section || finished || (event.target.type !== "text" && event.target.tagName !== "TEXTAREA")) return;
    keep(section);  // on the device at once; sent when the typing pauses
    clearTimeout(timers[section.dataset.qid]);
    timers[section.dataset.qid] = setTimeout(function () { timers[section.dataset.qid] = null; flush(); }, 800);
  });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var unanswered = sections.filter(function (s) { return valueOf(s) === null; }).length;
    var question = unanswered ? T.confirm_unanswered.replace("{n}", unanswered) : T.confirm;
    if (window.confirm(question)) submitNow();
  });

  // Extra time given while sitting (an override) moves the server's deadline: ask before handing in.
  var rechecked = 0;
  function timeUp() {
    deadlineSeen = true;
    if (!finished) { warningEl.textContent = T.time_up; warningEl.hidden = false; submitNow(); }
  }

  function recheckDeadline() {
    if (Date.now() - rechecked < 5000) { timeUp(); return; }
    rechecked = Date.now();
    fetch(api + "/attempts/" + attemptId + "/deadline", {credentials: "same-origin"}).then(function (r) {
      return r.ok ? r.json() : null;
    }).then(function (body) {
      var later = body && body.state === "in_progress" ? Date.parse(body.deadline) : NaN;
      if (later > deadline) {
        deadline = later;
        offset = Date.parse(body.server_now) - Date.now();
        warned = {};
        warningEl.hidden = true;
        deadlineSeen = false;
        tick();
      } else { timeUp(); }
    }, timeUp);
  }

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function tick() {
    var left = Math.max(0, Math.round((deadline - serverNow()) / 1000));
    var h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), s = left % 60;
    countdownEl.textContent = (h ? h + ":" + pad(m) : pad(m)) + ":" + pad(s);
    countdownEl.classList.toggle("low", left <= 300);
    [300, 60].forEach(function (mark) {
      if (left <= mark && left > 0 && !warned[mark]) {
        warned[mark] = true;
        warningEl.textContent = mark === 300 ? T.five_minutes : T.one_minute;
        warningEl.hidden = false;
      }
    });
    if (left <= 0) {
      if (!finished) recheckDeadline();
      return;
    }
    if (!finished) setTimeout(tick, 1000 - ((deadline - serverNow()) % 1000 + 1000) % 1000 || 1000);
  }

  // -- one question per screen on a phone ------------------------------------------------------

  var phone = window.matchMedia("(max-width: 720px)");
  function show(index) {
    current = Math.max(0, Math.min(sections.length - 1, index));
    sections.forEach(function (s, i) { s.classList.toggle("current", i === current); });
    paintAll();
  }
  var cardToggle = document.getElementById("card-toggle");
  var cardPanel = card.closest("section");
  function setCard(visible) {
    cardPanel.hidden = !visible;
    cardToggle.setAttribute("aria-expanded", visible ? "true" : "false");
  }
  function layout() {
    form.classList.toggle("paged", phone.matches);
    // A long paper's card would push the question off a phone's screen: open it on demand there.
    setCard(!(phone.matches && sections.length > 10));
    show(current);
  }
  if (phone.addEventListener) phone.addEventListener("change", layout);
  form.addEventListener("click", function (event) {
    var target = event.target.closest("button, a");
    if (!target) return;
    if (target.classList.contains("prev")) { event.preventDefault(); show(current - 1); window.scrollTo(0, 0); }
    else if (target.classList.contains("next")) { event.preventDefault(); show(current + 1); window.scrollTo(0, 0); }
    else if (target.classList.contains("flag")) {
      var section = target.closest(".question");
      var qid = section.dataset.qid;
      flags[qid] = !flags[qid];
      target.setAttribute("aria-pressed", flags[qid] ? "true" : "false");
      try { window.localStorage.setItem(flagKey, JSON.stringify(flags)); } catch (e) { /* private mode */ }
      paintCell(section);
    } else if (target.classList.contains("cell")) {
      event.preventDefault();
      var index = +target.dataset.index;
      if (form.classList.contains("paged")) {
        show(index);
        if (sections.length > 10) setCard(false);
        window.scrollTo(0, 0);
      }
      else { sections[index].scrollIntoView({block: "start"}); }
    } else if (target.id === "card-toggle") {
      setCard(cardPanel.hidden);
      if (!cardPanel.hidden) cardPanel.scrollIntoView({block: "nearest"});
    }
  });
  sections.forEach(function (s) {
    var flag = s.querySelector(".flag");
    if (flag) { flag.hidden = false; flag.setAttribute("aria-pressed", flags[s.dataset.qid] ? "true" : "false"); }
  });

  // -- the device's answers over the page's ------------------------------------------------------
  // An answer kept here and newer than the one the server had when this page was made is shown and,
  // unless the server already took it, sent; an older one gives way to the server's.
  sections.forEach(function (section) {
    var qid = section.dataset.qid;
    var e = entry(qid);
    if (!e) return;
    var serverAt = section.dataset.savedAt ? Date.parse(section.dataset.savedAt) : 0;
    if (e.at > serverAt || e.s === 3) setValue(section, e.v);
    else box.remove(user, attemptId, qid);
  });

  window.addEventListener("beforeunload", function (event) {
    // The answers are on the device; a warning only when the device could not keep one.
    if (!finished && box.volatile()) { event.preventDefault(); event.returnValue = ""; }
  });
  function wake() { failures = Math.min(failures, 1); later(0); }
  window.addEventListener("online", wake);
  window.addEventListener("offline", paintBar);
  window.addEventListener("focus", wake);
  window.addEventListener("pageshow", wake);
  document.addEventListener("visibilitychange", function () { if (document.visibilityState === "visible") wake(); });
  setInterval(function () { if (!inflight && waitingQids().length) flush(); }, 20000);

  // -- the service worker, and this page's first copy --------------------------------------------
  if ("serviceWorker" in navigator && ds.sw) {
    navigator.serviceWorker.register(ds.sw, {scope: ds.swScope}).then(function () {
      return navigator.serviceWorker.ready;
    }).then(function () {
      if (navigator.serviceWorker.controller || !window.caches) return;
      // Opened before the worker was there: keep this page and what it loads now, as the worker would.
      var urls = [window.location.pathname];
      Array.prototype.forEach.call(document.querySelectorAll('link[rel=stylesheet], script[src], link[rel=icon]'), function (el) {
        urls.push(el.href || el.src);
      });
      return window.caches.open("pbschool-exam-v1").then(function (cache) {
        return Promise.all(urls.map(function (url, i) {
          return fetch(url, {credentials: "same-origin"}).then(function (response) {
            if (!response.ok || response.redirected) return null;
            if (i === 0) {
              return response.clone().text().then(function (html) {
                var made = /data-server-now="([^"]+)"/.exec(html);
                if (made) noteClock(made[1], Date.parse(made[1]) - Date.now());
                return cache.put(new URL(url, window.location.href).href, response);
              });
            }
            return cache.put(new URL(url, window.location.href).href.split("?")[0], response);
          });
        }));
      });
    }).catch(function () { /* no worker: the page still saves, it only will not open offline */ });
  }

  layout();
  paintAll();
  paintBar();
  tick();
  if (over()) { timeIsUp = true; finished = true; paintLate(); }
  flush();
})();
