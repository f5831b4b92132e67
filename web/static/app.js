// StreamPulse pages: a little progressive enhancement. Every page works without this file.
// Never builds HTML from strings: only textContent, attributes and element properties.
"use strict";

(function () {
  // Auto-refresh (dashboard): reload unless the user is typing or looking at a snapshot.
  var refresh = Number(document.body.getAttribute("data-refresh"));
  if (refresh > 0) {
    setInterval(function () {
      var active = document.activeElement;
      var typing = active && (active.tagName === "INPUT" || active.tagName === "SELECT" || active.tagName === "TEXTAREA");
      var panel = document.getElementById("snapshot-panel");
      var viewing = panel && !panel.hidden;
      if (!typing && !viewing && !document.hidden) {
        window.location.reload();
      }
    }, refresh * 1000);
  }

  // Status filter: apply on change.
  var status = document.getElementById("filter-status");
  if (status && status.form) {
    status.addEventListener("change", function () { status.form.submit(); });
  }

  // Confirmation for destructive buttons.
  document.querySelectorAll("[data-confirm]").forEach(function (button) {
    button.addEventListener("click", function (event) {
      if (!window.confirm(button.getAttribute("data-confirm"))) {
        event.preventDefault();
      }
    });
  });

  // Config editor: keep the line-number gutter in step with the text.
  var text = document.getElementById("config-text");
  var gutter = document.getElementById("config-gutter");
  if (text && gutter) {
    var renumber = function () {
      // A final newline ends the last line; it does not start another.
      var lines = text.value.replace(/\n$/, "").split("\n").length;
      var numbers = [];
      for (var i = 1; i <= lines; i++) { numbers.push(i); }
      gutter.textContent = numbers.join("\n") + "\n";
      gutter.scrollTop = text.scrollTop;
    };
    text.addEventListener("input", renumber);
    text.addEventListener("scroll", function () { gutter.scrollTop = text.scrollTop; });
    renumber();
  }

  // Snapshots: fetch the JPEG and show it in the panel; show the probe's reason on failure.
  var panel = document.getElementById("snapshot-panel");
  if (!panel) { return; }
  var image = document.getElementById("snapshot-image");
  var error = document.getElementById("snapshot-error");
  var statusLine = document.getElementById("snapshot-status");
  var title = document.getElementById("snapshot-title");
  var close = document.getElementById("snapshot-close");
  var objectUrl = null;
  if (close) {
    close.addEventListener("click", function () { panel.hidden = true; });
  }
  document.querySelectorAll(".snapshot-button").forEach(function (button) {
    button.addEventListener("click", function (event) {
      event.preventDefault();
      var name = button.getAttribute("data-stream");
      panel.hidden = false;
      if (title) { title.textContent = "Snapshot · " + name; }
      error.hidden = true;
      image.hidden = true;
      statusLine.textContent = "Taking a snapshot of " + name + "…";
      button.setAttribute("aria-busy", "true");
      panel.setAttribute("data-state", "loading");
      if (panel.scrollIntoView) { panel.scrollIntoView({ block: "nearest" }); }
      fetch(button.getAttribute("href"), { credentials: "same-origin", cache: "no-store" })
        .then(function (response) {
          if (response.ok) {
            return response.blob().then(function (blob) {
              if (objectUrl) { URL.revokeObjectURL(objectUrl); }
              objectUrl = URL.createObjectURL(blob);
              image.src = objectUrl;
              image.hidden = false;
              statusLine.textContent = "Taken " + new Date().toLocaleTimeString() + ".";
              panel.setAttribute("data-state", "ok");
            });
          }
          return response.json().then(function (body) {
            throw new Error(body && body.error ? body.error.message : "HTTP " + response.status);
          }, function () {
            throw new Error("HTTP " + response.status);
          });
        })
        .catch(function (failure) {
          statusLine.textContent = "";
          error.textContent = failure.message;
          error.hidden = false;
          panel.setAttribute("data-state", "error");
        })
        .then(function () { button.removeAttribute("aria-busy"); });
    });
  });
})();

// Times in the browser's timezone when the user chose so (Account page): the server renders
// them in the configured timezone and marks each with its UTC milliseconds.
(function () {
  if (document.body.getAttribute("data-times") !== "browser") {
    return;
  }
  var two = function (n) { return (n < 10 ? "0" : "") + n; };
  var zone = "";
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch (e) {
    zone = "";
  }
  var local = function (ms) {
    var d = new Date(ms);
    return d.getFullYear() + "-" + two(d.getMonth() + 1) + "-" + two(d.getDate()) + " " +
      two(d.getHours()) + ":" + two(d.getMinutes()) + ":" + two(d.getSeconds()) + (zone ? " " + zone : "");
  };
  document.querySelectorAll("time[data-ms]").forEach(function (element) {
    var ms = Number(element.getAttribute("data-ms"));
    if (ms > 0) {
      element.setAttribute("datetime", new Date(ms).toISOString());
      element.textContent = local(ms);
    }
  });
  document.querySelectorAll("[data-title-ms]").forEach(function (element) {
    var ms = Number(element.getAttribute("data-title-ms"));
    if (ms > 0) {
      element.setAttribute("title", local(ms));
    }
  });
  document.querySelectorAll("[data-times-note]").forEach(function (element) {
    element.textContent = "your browser's timezone" + (zone ? " (" + zone + ")" : "");
  });
})();
