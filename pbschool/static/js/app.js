// Small progressive enhancements; every page works without this file.
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var button = event.submitter || form.querySelector("[type=submit]");
    var question = button && button.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
      return;
    }
    var busy = form.getAttribute("data-busy");
    if (busy && button) {
      button.disabled = true;
      button.textContent = busy;
    }
  });
})();
// One open dropdown at a time in the top bar, and a click elsewhere closes it.
(function () {
  "use strict";
  var selector = "details.topnav-group, details.menu";
  document.addEventListener("click", function (event) {
    document.querySelectorAll(selector + "[open]").forEach(function (open) {
      if (!open.contains(event.target)) { open.removeAttribute("open"); }
    });
  });
})();
// Signing out leaves no exam answers or offline exam pages on a shared phone (the server's answer
// also carries Clear-Site-Data; this covers browsers that ignore it).
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var action = event.target.getAttribute("action") || "";
    if (event.defaultPrevented || !/\/logout$/.test(action)) return;
    try {
      var doomed = [];
      for (var i = 0; i < window.localStorage.length; i++) {
        var k = window.localStorage.key(i);
        if (k && /^pbschool-(answer:|clock:|flags-)/.test(k)) doomed.push(k);
      }
      doomed.forEach(function (k) { window.localStorage.removeItem(k); });
    } catch (e) { /* no storage, nothing kept */ }
    if (window.caches) {
      window.caches.keys().then(function (names) {
        names.forEach(function (n) { if (n.indexOf("pbschool-exam-") === 0) window.caches.delete(n); });
      });
    }
  });
})();
