// Outpost staff app: the form works without this script; it only answers
// sooner. It asks the app (POST /check, same session and CSRF token as the
// form) whether the note passes the privacy screen and which services are
// not in the catalogue, and shows the answers next to the fields before
// saving. The note is sent only to this laptop's own daemon.
(function () {
  "use strict";
  var form = document.getElementById("visit");
  if (!form) { return; }
  var csrf = form.querySelector('input[name="csrf"]').value;
  var note = document.getElementById("f-note-text");
  var noteCheck = document.getElementById("note-check");
  var services = Array.prototype.slice.call(form.querySelectorAll("input.service"));
  var timer = null;

  function ask() {
    var body = JSON.stringify({
      note: note ? note.value : "",
      services: services.map(function (s) { return s.value; })
    });
    fetch("/check", {
      method: "POST",
      headers: { "content-type": "application/json", "x-csrf-token": csrf },
      body: body,
      credentials: "same-origin"
    }).then(function (r) { return r.ok ? r.json() : null; }).then(function (a) {
      if (!a) { return; }
      if (note && noteCheck) {
        noteCheck.textContent = a.note.message;
        noteCheck.className = "hint " + (a.note.ok ? "good" : "bad");
        if (a.note.ok) { note.removeAttribute("aria-invalid"); } else { note.setAttribute("aria-invalid", "true"); }
      }
      a.services.forEach(function (s, i) {
        var input = services[i];
        var hint = document.getElementById("svc-hint-" + i);
        if (!input || !hint) { return; }
        hint.textContent = s.known ? "" : s.message;
        hint.className = "hint" + (s.known ? "" : " bad");
        var label = form.querySelector('.bk-label[data-row="' + i + '"]');
        if (label && label.dataset.base === undefined) { label.dataset.base = label.textContent; }
        if (label) { label.textContent = input.value.trim() ? label.dataset.base.replace(/\d+\s*$/, "") + input.value.trim() : label.dataset.base; }
      });
    }).catch(function () { /* the server checks again on save */ });
  }

  function soon() {
    if (timer) { clearTimeout(timer); }
    timer = setTimeout(ask, 300);
  }

  if (note) { note.addEventListener("input", soon); }
  services.forEach(function (s) { s.addEventListener("change", ask); s.addEventListener("input", soon); });
  if ((note && note.value) || services.some(function (s) { return s.value; })) { ask(); }
})();
