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
      var live = document.getElementById("live-panel");
      var viewing = (panel && !panel.hidden) || (live && !live.hidden);
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

// Live view: read the multipart JPEG stream with fetch (so a refusal shows the server's reason and
// the end is known), each frame shown through a blob: URL; "ends in N s" from the server's
// X-Live-Ends-In (a shared session may be half over).
(function () {
  var button = document.getElementById("live-button");
  var panel = document.getElementById("live-panel");
  if (!button || !panel || !window.fetch || !window.TextDecoder) { return; }
  var image = document.getElementById("live-image");
  var error = document.getElementById("live-error");
  var statusLine = document.getElementById("live-status");
  var again = document.getElementById("live-again");
  var controller = null;
  var countdown = null;
  var shownUrl = null;

  var show = function (bytes) {
    var url = URL.createObjectURL(new Blob([bytes], { type: "image/jpeg" }));
    image.onload = function () {
      if (shownUrl && shownUrl !== url) { URL.revokeObjectURL(shownUrl); }
      shownUrl = url;
      image.hidden = false;
    };
    image.src = url;
  };

  var headerEnd = function (buffered) {
    var limit = Math.min(buffered.length, 1024);
    for (var i = 0; i + 3 < limit; i++) {
      if (buffered[i] === 13 && buffered[i + 1] === 10 && buffered[i + 2] === 13 && buffered[i + 3] === 10) { return i; }
    }
    return -1;
  };

  // Parts are "--boundary / Content-Type / Content-Length / blank line / JPEG": the length says
  // where each frame ends, so the JPEG's own bytes are never searched.
  var readParts = function (reader) {
    var buffered = new Uint8Array(0);
    var decoder = new TextDecoder();
    var step = function (result) {
      if (result.done) { return null; }
      var joined = new Uint8Array(buffered.length + result.value.length);
      joined.set(buffered);
      joined.set(result.value, buffered.length);
      buffered = joined;
      for (;;) {
        var end = headerEnd(buffered);
        if (end < 0) { break; }
        var length = /content-length:\s*(\d+)/i.exec(decoder.decode(buffered.subarray(0, end)));
        if (!length) { buffered = new Uint8Array(0); break; }
        var start = end + 4;
        var stop = start + Number(length[1]);
        if (buffered.length < stop) { break; }
        show(buffered.slice(start, stop));
        buffered = buffered.slice(stop);
      }
      return reader.read().then(step);
    };
    return reader.read().then(step);
  };

  var finish = function (message, failed) {
    if (countdown) { clearInterval(countdown); countdown = null; }
    statusLine.textContent = failed ? "" : message;
    if (failed) {
      error.textContent = message;
      error.hidden = false;
    }
    panel.setAttribute("data-state", failed ? "error" : "ended");
    again.hidden = false;
    button.removeAttribute("aria-busy");
  };

  var start = function () {
    if (controller) { controller.abort(); }
    if (countdown) { clearInterval(countdown); countdown = null; }
    controller = new AbortController();
    var mine = controller;
    panel.hidden = false;
    error.hidden = true;
    again.hidden = true;
    statusLine.textContent = "Starting the live view…";
    panel.setAttribute("data-state", "loading");
    button.setAttribute("aria-busy", "true");
    fetch(button.getAttribute("href"), { credentials: "same-origin", cache: "no-store", signal: mine.signal })
      .then(function (response) {
        if (!response.ok || !response.body) {
          return response.text().then(function (text) {
            throw new Error(text || "HTTP " + response.status);
          });
        }
        var endsIn = response.headers.get("x-live-ends-in");
        var seconds = Number(endsIn === null ? button.getAttribute("data-seconds") : endsIn) || 0;
        var endAt = Date.now() + seconds * 1000;
        var tick = function () {
          var left = Math.max(0, Math.round((endAt - Date.now()) / 1000));
          statusLine.textContent = "Live, ends in " + left + " s";
        };
        tick();
        countdown = setInterval(tick, 1000);
        panel.setAttribute("data-state", "live");
        button.removeAttribute("aria-busy");
        return readParts(response.body.getReader());
      })
      .then(function () {
        if (mine === controller) { finish("Live view ended —", false); }
      })
      .catch(function (failure) {
        if (mine !== controller || mine.signal.aborted) { return; }
        finish(failure.message, true);
      });
  };

  button.addEventListener("click", function (event) {
    event.preventDefault();
    start();
  });
  again.addEventListener("click", start);
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
