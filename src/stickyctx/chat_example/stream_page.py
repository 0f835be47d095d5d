"""The chat page's streamed replies (``CHAT_PAGE`` includes this script).

``follow(response)`` reads a ``text/event-stream`` answer of ``POST /chat/stream`` or
``GET /chat/stream`` into an assistant bubble (``token`` events appended, the terminal event's
``reply`` as its final text and its status on the row); the Stop button posts
``/chat/stop``; after a reload, a history ending with a user message is resumed.
"""

__all__ = ["STREAM_SCRIPT"]

STREAM_SCRIPT = r"""<script>
// Streamed replies: POST /chat/stream, resumed after a reload by GET /chat/stream, stopped
// by POST /chat/stop (docs/streaming.md).
const stopButton = document.getElementById("stop");

async function follow(response) {
  if (response.status === 204) return;
  if (!response.ok) {
    const data = await response.json().catch(() => ({}));
    throw new Error(response.status + ": " + JSON.stringify(data.detail || data));
  }
  const row = document.createElement("div");
  row.className = "msg assistant streaming";
  const bubble = document.createElement("span");
  row.appendChild(bubble);
  log.appendChild(row);
  stopButton.disabled = false;
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let event = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event: ")) event = line.slice(7);
          else if (line.startsWith("data: ")) data.push(line.slice(6));
        }
        if (event === "token") {
          bubble.textContent += data.join("\n");
        } else if (data.length) {
          const end = JSON.parse(data.join("\n"));
          bubble.textContent = end.reply;
          row.className = "msg assistant";
          row.dataset.status = end.status;
          if (event !== "done") {
            const small = document.createElement("small");
            small.className = "meta";
            small.textContent = event;
            row.appendChild(small);
          }
        }
        row.scrollIntoView();
      }
    }
  } finally {
    stopButton.disabled = true;
  }
}

stopButton.addEventListener("click", () => {
  fetch("/chat/stop", {method: "POST"}).catch((e) => { error.textContent = e.message; });
});

// After a reload: a user message without its reply yet means a reply is streaming: resume it.
async function resumeAfterReload() {
  const last = log.lastElementChild;
  if (last && last.classList.contains("user")) await follow(await fetch("/chat/stream"));
}
</script>
"""
