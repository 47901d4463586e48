// The exam page's service worker (served as /attempts/sw.js, scope /attempts/): reloading an exam
// without a signal shows the copy kept here, with the answers the device holds filled in by
// exams.js. Only the exam page itself (/attempts/<id>) and the site's static files are kept; API
// answers, other pages and anything that was not a plain 200 page are never stored. Sign-out clears
// it all (Clear-Site-Data, and exam-outbox.js).
"use strict";
var CACHE = "pbschool-exam-v1";
var ROOT = self.location.pathname.replace(/attempts\/sw\.js$/, "");
var PAGE = new RegExp("^" + ROOT.replace(/[.*+?^${}()|[\]\\]/g, "\\$&") + "attempts/\\d+$");
var STATIC = ROOT + "static/";
var PATIENCE_MS = 8000;  // a weak signal: after this long the kept copy is shown, the answer still kept

self.addEventListener("install", function () { self.skipWaiting(); });

self.addEventListener("activate", function (event) {
  event.waitUntil(caches.keys().then(function (names) {
    return Promise.all(names.filter(function (n) { return n.indexOf("pbschool-exam-") === 0 && n !== CACHE; })
      .map(function (n) { return caches.delete(n); }));
  }).then(function () { return self.clients.claim(); }));
});

function isPage(response) {
  return response.ok && response.type === "basic" && !response.redirected &&
    (response.headers.get("Content-Type") || "").indexOf("text/html") === 0;
}

function networkFirst(event, key, keep) {
  var opened = caches.open(CACHE);
  var network = fetch(event.request);
  // Registered before the page is handed the response, so the copy is taken while the body is unread;
  // kept alive by waitUntil even when the kept copy was shown first.
  event.waitUntil(network.then(function (response) {
    var copy = keep(response) ? response.clone() : null;
    return opened.then(function (cache) {
      if (copy) return cache.put(key, copy);
      // finished (a redirect to the result), not this person's, or signed out: forget the copy
      if (event.request.mode === "navigate") return cache.delete(key);
      return null;
    });
  }).catch(function () { return null; }));
  return new Promise(function (resolve, reject) {
    var settled = false;
    function fallBack(error) {
      opened.then(function (cache) { return cache.match(key, {ignoreVary: true}); }).then(function (copy) {
        if (settled) return;
        if (copy) { settled = true; resolve(copy); } else if (error) { settled = true; reject(error); }
      });
    }
    var timer = setTimeout(function () { fallBack(null); }, PATIENCE_MS);
    network.then(function (response) {
      clearTimeout(timer);
      if (!settled) { settled = true; resolve(response); }
    }, function (error) { clearTimeout(timer); fallBack(error); });
  });
}

self.addEventListener("fetch", function (event) {
  var request = event.request;
  if (request.method !== "GET") return;
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === "navigate" && PAGE.test(url.pathname)) {
    event.respondWith(networkFirst(event, url.origin + url.pathname, isPage));
  } else if (url.pathname.indexOf(STATIC) === 0) {
    event.respondWith(networkFirst(event, url.origin + url.pathname, function (r) { return r.ok && r.type === "basic"; }));
  }
});
