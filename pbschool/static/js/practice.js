// Practice: send one answer to the API and show the feedback at once (the page's forms work without it).
(function () {
  "use strict";
  var root = document.getElementById("practice");
  if (!root) { return; }
  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.getAttribute("content") : "";
  var strings = JSON.parse(document.getElementById("practice-strings").textContent);
  var base = root.getAttribute("data-api") + "/practice/" + root.getAttribute("data-practice");
  var progress = document.getElementById("progress");

  function valueOf(section) {
    var type = section.getAttribute("data-type");
    var inputs = section.querySelectorAll('input[name="q' + section.getAttribute("data-qid") + '"]');
    var i, out;
    if (type === "multiple") {
      out = [];
      for (i = 0; i < inputs.length; i++) { if (inputs[i].checked) { out.push(inputs[i].value); } }
      return out.length ? out.sort() : null;
    }
    if (type === "blank") {
      out = [];
      var any = false;
      for (i = 0; i < inputs.length; i++) { out.push(inputs[i].value); if (inputs[i].value.trim()) { any = true; } }
      return any ? out : null;
    }
    for (i = 0; i < inputs.length; i++) {
      if (inputs[i].checked) {
        if (type === "truefalse") { return inputs[i].value === "true"; }
        return inputs[i].value;
      }
    }
    return null;
  }

  function describe(answer) {
    if (answer === true) { return strings["true"]; }
    if (answer === false) { return strings["false"]; }
    if (Array.isArray(answer)) { return answer.join(typeof answer[0] === "string" && answer[0].length > 1 ? "；" : ""); }
    return String(answer);
  }

  function show(section, body) {
    var box = section.querySelector(".feedback");
    box.textContent = "";
    var verdict = document.createElement("p");
    verdict.className = "verdict";
    var strong = document.createElement("strong");
    strong.textContent = body.correct ? strings.right : strings.wrong;
    verdict.appendChild(strong);
    box.appendChild(verdict);
    var key = document.createElement("p");
    key.appendChild(document.createTextNode(strings.answer));
    var right = document.createElement("strong");
    right.className = "right-answer";
    right.textContent = describe(body.answer);
    key.appendChild(right);
    box.appendChild(key);
    if (body.explanation_html) {
      var expl = document.createElement("div");
      expl.className = "explanation";
      var title = document.createElement("strong");
      title.textContent = strings.explanation;
      expl.appendChild(title);
      var content = document.createElement("div");
      content.innerHTML = body.explanation_html;  // sanitised by the server (render_markdown)
      expl.appendChild(content);
      box.appendChild(expl);
    }
    box.hidden = false;
    section.classList.add(body.correct ? "right" : "wrong");
    var inputs = section.querySelectorAll("input");
    for (var i = 0; i < inputs.length; i++) { inputs[i].disabled = true; }
    var button = section.querySelector(".check-answer");
    if (button) { button.remove(); }
    if (progress) {
      var done = root.querySelectorAll(".feedback:not([hidden])").length;
      progress.textContent = progress.textContent.replace(/\d+(\s*\/)/, done + "$1");
    }
  }

  root.addEventListener("submit", function (event) {
    var form = event.target;
    var section = form.closest(".practice-q");
    if (!section) { return; }
    event.preventDefault();
    var error = section.querySelector(".q-error");
    var value = valueOf(section);
    if (value === null) { error.textContent = strings.empty; error.hidden = false; return; }
    error.hidden = true;
    fetch(base + "/answers/" + section.getAttribute("data-qid"), {
      method: "PUT", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": csrf},
      body: JSON.stringify({answer: value})
    }).then(function (response) {
      return response.json().then(function (body) { return {ok: response.ok, body: body}; });
    }).then(function (reply) {
      if (reply.ok) { show(section, reply.body); return; }
      error.textContent = (reply.body.error && reply.body.error.message) || strings.failed;
      error.hidden = false;
    }).catch(function () { error.textContent = strings.failed; error.hidden = false; });
  });
}());
