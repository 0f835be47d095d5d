"""The chat page's sidebar of conversations, for the signed-in users of the examples.

Added to the page before ``</body>``, on its own: signed out, the page is the anonymous chat it
always was; signed in (the examples' ``POST /login`` stand-in), the sidebar lists the user's
conversations (newest activity first), starts new ones, resumes one with its history, and
sends the page's messages to the selected conversation, echoing the node that holds it in
``X-Stickyctx-Node`` so that a load balancer routes the request there.
"""

from __future__ import annotations

__all__ = ["SIDEBAR", "with_sidebar"]

SIDEBAR = """<aside id="sidebar" aria-label="Conversations">
  <form id="signin">
    <input id="user" autocomplete="username" placeholder="your user name" required>
    <button type="submit">Sign in</button>
  </form>
  <div id="account" hidden>
    <p><span id="who"></span> <button id="signout" type="button">Sign out</button></p>
    <button id="newconv" type="button">+ New conversation</button>
    <ul id="convlist"></ul>
  </div>
</aside>
<style>
  #sidebar { position: fixed; left: 0; top: 0; bottom: 0; width: 14rem; padding: 1rem;
             border-right: 1px solid #ddd; background: #fafafa; overflow-y: auto; }
  #sidebar input { width: 100%; box-sizing: border-box; margin-bottom: .4rem; }
  #convlist { list-style: none; padding: 0; }
  #convlist li { padding: .35rem .5rem; border-radius: 6px; cursor: pointer; }
  #convlist li.current { background: #e4efff; }
  #convlist small { display: block; color: #777; font-size: 12px; }
  @media (min-width: 60rem) { body { margin-left: 18rem; } }
</style>
<script>
(() => {
  let current = null;
  const hints = {};  // conversation id -> the node that holds it
  const $ = (id) => document.getElementById(id);

  async function request(method, path, body, conversation) {
    const headers = {"Accept": "application/json"};
    const options = {method, headers};
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    if (conversation && hints[conversation]) headers["X-Stickyctx-Node"] = hints[conversation];
    const response = await fetch(path, options);
    const node = response.headers.get("X-Stickyctx-Node");
    if (conversation && node) hints[conversation] = node;
    const data = await response.json();
    if (!response.ok) {
      const error = new Error(response.status + ": " + JSON.stringify(data.detail || data));
      error.status = response.status;
      throw error;
    }
    return {data, node};
  }

  function signedIn(user) {
    $("signin").hidden = !!user;
    $("account").hidden = !user;
    $("who").textContent = user ? "Signed in as " + user : "";
  }

  async function refresh() {
    const {data} = await request("GET", "/conversations");
    const list = $("convlist");
    list.textContent = "";
    for (const c of data.conversations) {
      const item = document.createElement("li");
      item.dataset.id = c.id;
      item.textContent = c.title || "New conversation";
      const small = document.createElement("small");
      small.textContent = c.turns + " turns";
      item.appendChild(small);
      if (c.id === current) item.className = "current";
      item.addEventListener("click", () => select(c.id).catch(report));
      list.appendChild(item);
    }
    return data.conversations;
  }

  function report(e) { $("error").textContent = e.message; }

  async function select(id) {
    current = id;
    const {data} = await request("GET", "/conversations/" + id + "/history", undefined, id);
    $("log").textContent = "";
    for (const m of data.messages) {
      show(m.role, typeof m.content === "string" ? m.content : JSON.stringify(m.content));
    }
    await refresh();
  }

  // Messages go to the selected conversation; signed out, the page's own handler sends them.
  document.addEventListener("submit", async (event) => {
    if (event.target.id !== "form" || current === null) return;
    event.preventDefault();
    event.stopPropagation();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    $("error").textContent = "";
    show("user", text);
    try {
      const {data: r} = await request("POST", "/conversations/" + current + "/chat",
                                      {message: text}, current);
      show("assistant", r.reply, "node " + r.node + " · owner " + r.owner + " · " +
           r.affinity + " · turn " + r.turns + " · " + r.tokens + " tokens");
      await refresh();
    } catch (e) { report(e); }
  }, true);

  $("signin").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const {data} = await request("POST", "/login", {user: $("user").value.trim()});
      signedIn(data.user);
      const conversations = await refresh();
      if (conversations.length) await select(conversations[0].id);
      else $("log").textContent = "";
    } catch (e) { report(e); }
  });

  $("newconv").addEventListener("click", async () => {
    try {
      const {data, node} = await request("POST", "/conversations");
      if (node) hints[data.id] = node;
      await select(data.id);
    } catch (e) { report(e); }
  });

  $("signout").addEventListener("click", async () => {
    try {
      await request("POST", "/logout");
      current = null;
      signedIn(null);
      await loadHistory();
    } catch (e) { report(e); }
  });

  refresh().then(async (conversations) => {
    signedIn(true);
    $("who").textContent = "Signed in";
    if (conversations.length) await select(conversations[0].id);
  }).catch(() => signedIn(null));
})();
</script>
"""


def with_sidebar(page: str) -> str:
    """``page`` with the sidebar before its ``</body>``."""
    head, marker, tail = page.rpartition("</body>")
    return head + SIDEBAR + marker + tail if marker else page + SIDEBAR
