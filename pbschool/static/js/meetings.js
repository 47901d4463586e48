// 全选 for an attendance list: one box ticks or clears every member; it reflects a partial choice.
(function () {
  "use strict";
  document.querySelectorAll("[data-select-all]").forEach(function (label) {
    var box = label.querySelector("input");
    var list = document.getElementById(label.getAttribute("data-select-all"));
    if (!box || !list) return;
    var items = list.querySelectorAll("input[type=checkbox]");
    if (!items.length) return;
    function sync() {
      var on = 0;
      items.forEach(function (i) { if (i.checked) on += 1; });
      box.checked = on === items.length;
      box.indeterminate = on > 0 && on < items.length;
    }
    box.addEventListener("change", function () {
      items.forEach(function (i) { i.checked = box.checked; });
      sync();
    });
    items.forEach(function (i) { i.addEventListener("change", sync); });
    label.hidden = false;
    sync();
  });
})();
