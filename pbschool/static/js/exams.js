// The exam sitting page: countdown from the server's deadline, every answer saved through the API
// (retried when the network drops), answer card, flags, one question per screen on phones.
// Without this file the page still works: a plain form that saves and submits.
(function () {
  "use strict";
  var form = document.getElementById("paper");
  if (!form) return;
  var ds = form.dataset;
  var attemptId = ds.attempt;
  var api = ds.api;
  var resultUrl = ds.resultUrl;
  var deadline = Date.parse(ds.deadline);
  var offset = Date.parse(ds.serverNow) - Date.now();
  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.getAttribute("content") : "";
  var sections = Array.prototype.slice.call(form.querySelectorAll(".question"));
  var stateEl = document.getElementById("save-state");
  var countdownEl = document.getElementById("countdown");
  var warningEl = document.getElementById("time-warning");
  var card = document.getElementById("answer-card");
  var T = JSON.parse(document.getElementById("exam-strings").textContent);
  var pending = {};
  var inflight = false;
  var failures = 0;
  var finished = false;
  var warned = {};
  var current = 0;
  var flagKey = "pbschool-flags-" + attemptId;
  var flags = {};
  try { flags = JSON.parse(window.localStorage.getItem(flagKey) || "{}"); } catch (e) { flags = {}; }

  form.classList.add("js-on");

  function serverNow() { return Date.now() + offset; }

  function setState(kind) {
    stateEl.className = "save-state " + kind;
    stateEl.textContent = T[kind];
  }

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

  function cellFor(section) { return card && card.querySelector('[data-index="' + section.dataset.index + '"]'); }

  function paintCell(section) {
    var cell = cellFor(section);
    if (!cell) return;
    cell.classList.toggle("answered", valueOf(section) !== null);
    cell.classList.toggle("flagged", !!flags[section.dataset.qid]);
    cell.classList.toggle("current", form.classList.contains("paged") && +section.dataset.index === current);
  }

  function paintAll() { sections.forEach(paintCell); }

  function showError(qid, message) {
    var section = form.querySelector('.question[data-qid="' + qid + '"]');
    if (!section) return;
    var el = section.querySelector(".q-error");
    el.textContent = message || "";
    el.hidden = !message;
  }

  function flush() {
    if (inflight) return;
    var qids = Object.keys(pending);
    if (!qids.length) { if (!failures) setState("saved"); return; }
    var qid = qids[0];
    var value = pending[qid];
    delete pending[qid];
    inflight = true;
    setState(failures ? "retry" : "saving");
    fetch(api + "/attempts/" + attemptId + "/answers/" + qid, {
      method: "PUT", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": csrf},
      body: JSON.stringify({answer: value})
    }).then(function (response) {
      inflight = false;
      if (response.ok) { failures = 0; showError(qid, ""); flush(); return; }
      if (response.status === 409) {
        response.json().then(function () { timeUp(); }, function () { timeUp(); });
        return;
      }
      if (response.status === 401 || response.status === 403) {
        // Logged out (another device, or the session ended): keep the answer and say what to do.
        if (!(qid in pending)) pending[qid] = value;
        setState("retry");
        warningEl.textContent = T.logged_out;
        warningEl.hidden = false;
        setTimeout(flush, 15000);
        return;
      }
      if (response.status >= 500 || response.status === 429) { retry(qid, value); return; }
      response.json().then(function (body) { showError(qid, body.error && body.error.message); },
                           function () {});
      flush();
    }, function () {
      inflight = false;
      retry(qid, value);
    });
  }

  function retry(qid, value) {
    if (!(qid in pending)) pending[qid] = value;
    failures += 1;
    setState("retry");
    setTimeout(flush, Math.min(30000, 1000 * Math.pow(2, Math.min(failures, 5))));
  }

  function queue(section) {
    pending[section.dataset.qid] = valueOf(section);
    paintCell(section);
    setState("saving");
    flush();
  }

  var timers = {};
  form.addEventListener("change", function (event) {
    var section = event.target.closest(".question");
    if (section) { clearTimeout(timers[section.dataset.qid]); queue(section); }
  });
  form.addEventListener("input", function (event) {
    var section = event.target.closest(".question");
    if (!section || (event.target.type !== "text" && event.target.tagName !== "TEXTAREA")) return;
    setState("saving");
    clearTimeout(timers[section.dataset.qid]);
    timers[section.dataset.qid] = setTimeout(function () { queue(section); }, 800);
  });

  function idle() {
    return new Promise(function (resolve) {
      var waited = 0;
      (function check() {
        if ((!inflight && !Object.keys(pending).length) || waited > 15000) { resolve(); return; }
        waited += 200;
        setTimeout(check, 200);
      })();
    });
  }

  function submitNow() {
    if (finished) return;
    finished = true;
    sections.forEach(function (s) { if (timers[s.dataset.qid]) { clearTimeout(timers[s.dataset.qid]); queue(s); } });
    idle().then(function () {
      return fetch(api + "/attempts/" + attemptId + "/submit", {
        method: "POST", credentials: "same-origin", headers: {"X-CSRFToken": csrf}
      });
    }).then(function (response) {
      if (response.ok) { window.location.href = resultUrl; return; }
      finished = false;
      HTMLFormElement.prototype.submit.call(form);
    }, function () {
      finished = false;
      HTMLFormElement.prototype.submit.call(form);
    });
  }

  function timeUp() {
    finished = true;
    warningEl.textContent = T.time_up;
    warningEl.hidden = false;
    setTimeout(function () { window.location.href = resultUrl; }, 1500);
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var unanswered = sections.filter(function (s) { return valueOf(s) === null; }).length;
    var question = unanswered ? T.confirm_unanswered.replace("{n}", unanswered) : T.confirm;
    if (window.confirm(question)) submitNow();
  });

  // Extra time given while sitting (an override) moves the server's deadline: ask before handing in.
  var rechecked = 0;
  function recheckDeadline() {
    if (Date.now() - rechecked < 5000) { submitNow(); return; }
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
        tick();
      } else { submitNow(); }
    }, submitNow);
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
    if (left <= 0 && !finished) { recheckDeadline(); return; }
    if (!finished) setTimeout(tick, 1000 - ((deadline - serverNow()) % 1000 + 1000) % 1000 || 1000);
  }

  // One question per screen on a phone.
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
  window.addEventListener("beforeunload", function (event) {
    if (!finished && (inflight || Object.keys(pending).length)) { event.preventDefault(); event.returnValue = ""; }
  });
  window.addEventListener("online", flush);
  window.addEventListener("focus", flush);

  layout();
  setState("saved");
  tick();
})();
