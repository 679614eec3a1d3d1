// Renders each chart from the Vega-Lite spec in its <script type="application/json"> block.
// Expressions run through vega-interpreter (no eval), so the page keeps a CSP without 'unsafe-eval'.
(function () {
  "use strict";
  function render() {
    if (!window.vegaEmbed || !window.vega || !window.vega.expressionInterpreter) {
      return;
    }
    document.querySelectorAll("[data-spec-id]").forEach(function (element) {
      var source = document.getElementById(element.getAttribute("data-spec-id"));
      if (!source) {
        return;
      }
      var spec = JSON.parse(source.textContent);
      window.vegaEmbed(element, spec, {
        actions: false,
        ast: true,
        expr: window.vega.expressionInterpreter,
        renderer: "svg",
        defaultStyle: false,
        tooltip: false,
        config: { locale: {}, background: null },
      }).catch(function (problem) {
        element.textContent = String(problem);
      });
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", render);
  } else {
    render();
  }
})();
