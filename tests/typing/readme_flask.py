"""The README's Flask quickstart, checked by mypy --strict (kept identical by a test)."""

from flask import Flask, request

from stickyctx.flask import StickyCtx, current_context

app = Flask(__name__)
StickyCtx(app)  # configured by STICKYCTX_* variables


@app.post("/chat")
def chat() -> dict[str, object]:
    conv = current_context()
    conv.append("user", request.get_json()["message"])
    window = conv.window(system="You are helpful.")
    reply = f"{len(window)} messages in context"  # call your model with `window`
    conv.append("assistant", reply)
    return {"reply": reply, "affinity": conv.affinity, "tokens": conv.token_count()}
