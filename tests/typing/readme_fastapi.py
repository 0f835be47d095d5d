"""The README's FastAPI quickstart, checked by mypy --strict (kept identical by a test)."""

from fastapi import FastAPI
from pydantic import BaseModel

from stickyctx import StickyMiddleware
from stickyctx.fastapi import Conversation, install_error_handlers

app = FastAPI()
app.add_middleware(StickyMiddleware)  # configured by STICKYCTX_* variables
install_error_handlers(app)           # busy session -> 409, store down -> 503, ...


class Chat(BaseModel):
    message: str


@app.post("/chat")
async def chat(body: Chat, conv: Conversation) -> dict[str, object]:
    await conv.append("user", body.message)
    window = await conv.window(system="You are helpful.")  # fits STICKYCTX_TOKEN_BUDGET
    reply = f"{len(window)} messages in context"            # call your model with `window`
    await conv.append("assistant", reply)
    return {"reply": reply, "affinity": conv.affinity, "tokens": await conv.token_count()}
