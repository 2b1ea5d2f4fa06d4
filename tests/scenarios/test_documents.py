"""Documents: an inline PDF from every client API (Chat `file` part, Messages `document` block,
Responses `input_file`) reaches every upstream kind in its own form, byte for byte."""

from __future__ import annotations

import pytest
from upstreams.script import Reply

from scenarios.conftest import World
from scenarios.neutral import Ask, Msg, Pdf
from scenarios.rows import Case, cases

pytestmark = pytest.mark.asyncio(loop_scope="module")

# the smallest well-formed PDF header and trailer, base64: the gateway never opens it
PDF = Pdf("JVBERi0xLjQKJcOkw7zDtsOfCjEgMCBvYmoKPDw+PgplbmRvYmoKdHJhaWxlcgo8PC9Sb290IDEgMCBSPj4KJSVFT0YK", "report.pdf")


@cases("pdf", needs={"pdf"})
async def test_pdf_reaches_the_upstream_as_its_document(world: World, case: Case) -> None:
    lane = world.lane(case)
    lane.script(Reply(text="A report."))
    r = await world.send(case, Ask(messages=(Msg("user", "Summarise this.", pdfs=(PDF,)),)))
    assert r.error is None
    assert r.text == "A report."
    sent = PDF if case.kind.document_names else Pdf(PDF.data, "")
    assert lane.sent().messages == [Msg("user", "Summarise this.", pdfs=(sent,))]
