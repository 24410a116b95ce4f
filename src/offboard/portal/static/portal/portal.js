// Progressive enhancement only: every action works without JavaScript.
(function () {
  "use strict";
  // Copy a file's full SHA-256.
  document.querySelectorAll("button.copy[data-copy]").forEach(function (button) {
    if (!navigator.clipboard) return;
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(button.dataset.copy).then(function () {
        button.textContent = "Copied";
        button.classList.add("done");
        setTimeout(function () { button.textContent = "Copy"; button.classList.remove("done"); }, 1600);
      });
    });
  });
  // How many items are ticked, in the action bar.
  var counter = document.querySelector("[data-selected]");
  var boxes = document.querySelectorAll('input[type=checkbox][name=item][form="select-form"]');
  function update() {
    if (!counter) return;
    var n = Array.prototype.filter.call(boxes, function (b) { return b.checked; }).length;
    counter.hidden = n === 0;
    counter.textContent = n ? " · " + n + " selected" : "";
  }
  boxes.forEach(function (b) { b.addEventListener("change", update); });
  update();
})();
