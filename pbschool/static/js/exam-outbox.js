// Answers kept on the device: one localStorage entry per user, attempt and question, written before
// anything is sent, so an answer outlives a lost signal, a closed tab and a reload. The exam page
// (exams.js) sends them; the result page sends what was still waiting when the attempt ended.
(function () {
  "use strict";
  var PREFIX = "pbschool-answer:";
  var CACHE_PREFIX = "pbschool-exam-";
  var memory = {};

  function store() { try { return window.localStorage; } catch (e) { return null; } }
  function key(user, attempt, qid) { return PREFIX + user + ":" + attempt + ":" + qid; }

  var outbox = {
    // One entry: {v: the answer, at: when it was given (server time, ms), n: its number on the
    // paper, s: 0 waiting | 1 on the server | 2 refused | 3 arrived after the deadline}.
    get: function (user, attempt, qid) {
      var k = key(user, attempt, qid), s = store();
      if (k in memory) return memory[k];
      if (!s) return null;
      try { return JSON.parse(s.getItem(k) || "null"); } catch (e) { return null; }
    },
    put: function (user, attempt, qid, entry) {
      var k = key(user, attempt, qid), s = store();
      try { s.setItem(k, JSON.stringify(entry)); delete memory[k]; return true; } catch (e) {
        memory[k] = entry;  // storage full or refused (private mode): this page's memory, at least
        return false;
      }
    },
    remove: function (user, attempt, qid) {
      var k = key(user, attempt, qid), s = store();
      delete memory[k];
      if (s) s.removeItem(k);
    },
    // whether an answer waits that lives only in this page's memory
    volatile: function () {
      return Object.keys(memory).some(function (k) { return memory[k] && memory[k].s === 0; });
    },
    // {qid: entry} of one user's attempt
    all: function (user, attempt) {
      var s = store(), out = {}, head = PREFIX + user + ":" + attempt + ":";
      Object.keys(memory).forEach(function (k) { if (k.indexOf(head) === 0) out[k.slice(head.length)] = memory[k]; });
      if (!s) return out;
      for (var i = 0; i < s.length; i++) {
        var k = s.key(i);
        if (k && k.indexOf(head) === 0) {
          if (k in memory) continue;
          try { out[k.slice(head.length)] = JSON.parse(s.getItem(k)); } catch (e) { /* a broken entry is skipped */ }
        }
      }
      return out;
    },
    forget: function (user, attempt) {
      var s = store();
      Object.keys(outbox.all(user, attempt)).forEach(function (qid) { delete memory[key(user, attempt, qid)]; });
      if (!s) return;
      Object.keys(outbox.all(user, attempt)).forEach(function (qid) { s.removeItem(key(user, attempt, qid)); });
      s.removeItem("pbschool-clock:" + user + ":" + attempt);
    },
    // Sign-out: nothing of this person's exams stays on a shared phone (the server also sends
    // Clear-Site-Data with the sign-out's answer).
    clearAll: function () {
      var s = store();
      if (s) {
        var doomed = [];
        for (var i = 0; i < s.length; i++) {
          var k = s.key(i);
          if (k && (k.indexOf(PREFIX) === 0 || k.indexOf("pbschool-clock:") === 0 || k.indexOf("pbschool-flags-") === 0)) doomed.push(k);
        }
        doomed.forEach(function (k) { s.removeItem(k); });
      }
      if (window.caches) {
        window.caches.keys().then(function (names) {
          names.forEach(function (name) { if (name.indexOf(CACHE_PREFIX) === 0) window.caches.delete(name); });
        });
      }
    },
    dropPage: function (url) {
      if (!window.caches) return;
      window.caches.keys().then(function (names) {
        names.forEach(function (name) {
          if (name.indexOf(CACHE_PREFIX) === 0) window.caches.open(name).then(function (c) { c.delete(url); });
        });
      });
    },
    // One PUT; resolves to the response, rejects on a network error.
    send: function (api, csrf, attempt, qid, value) {
      return fetch(api + "/attempts/" + attempt + "/answers/" + qid, {
        method: "PUT", credentials: "same-origin",
        headers: {"Content-Type": "application/json", "X-CSRFToken": csrf},
        body: JSON.stringify({answer: value})
      });
    }
  };
  window.pbschoolOutbox = outbox;

  // The result page: answers still waiting on this device when the attempt ended are sent once
  // (the server keeps them as arrived late), then the page names them as not counted.
  document.addEventListener("DOMContentLoaded", function () {
    var box = document.getElementById("late-outbox");
    if (!box) return;
    var ds = box.dataset;
    var meta = document.querySelector('meta[name="csrf-token"]');
    var csrf = meta ? meta.getAttribute("content") : "";
    var entries = outbox.all(ds.user, ds.attempt);
    var waiting = Object.keys(entries).filter(function (q) { return entries[q] && entries[q].s === 0; });
    var late = Object.keys(entries).filter(function (q) { return entries[q] && entries[q].s === 3; });
    function show() {
      var numbers = late.map(function (q) { return entries[q].n; }).sort(function (a, b) { return a - b; });
      if (!numbers.length) return;
      box.textContent = box.getAttribute("data-message").replace("{list}", numbers.join("、"));
      box.hidden = false;
    }
    var chain = Promise.resolve();
    var offline = false;
    waiting.forEach(function (q) {
      chain = chain.then(function () {
        if (offline) return null;
        return outbox.send(ds.api, csrf, ds.attempt, q, entries[q].v).then(function () {
          late.push(q);
        }, function () { offline = true; });
      });
    });
    chain.then(function () {
      show();
      if (!offline) outbox.forget(ds.user, ds.attempt);
    });
  });
})();
