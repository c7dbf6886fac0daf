// Placeholder for the demo UI: shows whether the server is up.
fetch("/healthz")
  .then((r) => r.json())
  .then((h) => { document.getElementById("status").textContent = "Server status: " + h.status; })
  .catch(() => { document.getElementById("status").textContent = "Server unreachable."; });
