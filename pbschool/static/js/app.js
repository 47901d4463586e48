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
