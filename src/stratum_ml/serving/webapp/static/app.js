// Draws every chart of the page: a Vega-Lite spec in <script type="application/json"
// class="chart-spec" data-target="ID"> becomes an SVG in the element with that id.
(function () {
  "use strict";
  function draw(root) {
    root.querySelectorAll("script.chart-spec").forEach(function (el) {
      var target = document.getElementById(el.dataset.target);
      if (!target || target.dataset.drawn) { return; }
      target.dataset.drawn = "1";
      var spec = JSON.parse(el.textContent);
      window.vegaEmbed(target, spec, { renderer: "svg", actions: false })
        .then(function () { target.dataset.rendered = "1"; })
        .catch(function (err) { target.textContent = String(err); target.dataset.rendered = "error"; });
    });
  }
  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  document.addEventListener("htmx:afterSwap", function (e) { draw(e.target); });
})();
