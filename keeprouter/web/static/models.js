// Comfort only: every page works without this script (the filter form submits to the server).
// The models list filters and sorts as you type; code samples get a copy button.
(function () {
  "use strict";
  var list = document.getElementById("model-list");
  var form = document.querySelector("form.filters");
  if (list && form) {
    var q = form.querySelector("#q"), maker = form.querySelector("#maker");
    var cap = form.querySelector("#capability"), kind = form.querySelector("#modality");
    var sort = form.querySelector("#sort");
    var count = document.getElementById("model-count");
    var cards = Array.prototype.slice.call(list.children);
    var total = cards.length;
    var keys = {
      newest: function (a, b) { return Number(b.dataset.created) - Number(a.dataset.created); },
      price: function (a, b) { return Number(a.dataset.price) - Number(b.dataset.price); },
      context: function (a, b) { return Number(b.dataset.context) - Number(a.dataset.context); },
      usage: function (a, b) { return Number(b.dataset.usage) - Number(a.dataset.usage); },
      name: function () { return 0; }
    };
    var apply = function () {
      var text = q.value.trim().toLowerCase(), m = maker.value, c = cap.value, k = kind.value, shown = 0;
      cards.forEach(function (card) {
        var ok = (!text || card.dataset.search.indexOf(text) !== -1) && (!m || card.dataset.maker === m) &&
          (!c || (" " + card.dataset.caps + " ").indexOf(" " + c + " ") !== -1) && (!k || card.dataset.modality === k);
        card.hidden = !ok;
        if (ok) { shown += 1; }
      });
      var byName = function (a, b) { return a.dataset.name < b.dataset.name ? -1 : a.dataset.name > b.dataset.name ? 1 : 0; };
      var cmp = keys[sort.value] || keys.newest;
      cards.slice().sort(function (a, b) { return cmp(a, b) || byName(a, b); }).forEach(function (card) { list.appendChild(card); });
      count.textContent = "Showing " + shown + " of " + total + " models";
    };
    [q, maker, cap, kind, sort].forEach(function (el) { el.addEventListener("input", apply); el.addEventListener("change", apply); });
    form.addEventListener("submit", function (e) { e.preventDefault(); apply(); });
  }
  Array.prototype.forEach.call(document.querySelectorAll("button.copy"), function (btn) {
    if (!navigator.clipboard) { return; }
    btn.hidden = false;
    btn.addEventListener("click", function () {
      var code = document.getElementById(btn.dataset.copy);
      navigator.clipboard.writeText(code.textContent).then(function () { btn.textContent = "Copied"; });
    });
  });
})();
