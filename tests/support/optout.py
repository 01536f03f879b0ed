"""Small real texts for the opt-out, takedown and decontamination tests, written for them.

An evaluation set in the style of GSM8K and MMLU (items written here, not copied from either), a web page
that quotes one of its questions inside an ordinary blog post, and a page about the same subject that
shares only short common phrases with it ("how much money does", "which of the following", "every
morning"), never 13 words in a row.
"""

from __future__ import annotations

import json
from pathlib import Path

GSM8K_STYLE = [
    {"question": "Maria bakes 3 trays of muffins every morning. Each tray holds 12 muffins. She sells the muffins "
                 "for $2 each and gives 5 muffins to her neighbor every day. How much money does Maria make from "
                 "selling muffins in one week?",
     "answer": "She bakes 3 * 12 = 36 muffins a day. She sells 36 - 5 = 31 muffins a day, so she makes "
               "31 * 2 = $62 a day. In one week she makes 62 * 7 = $434. #### 434"},
    {"question": "A train leaves the station at 9:15 and travels at 80 kilometres per hour for two and a half hours, "
                 "then stops for twenty minutes before covering the last 45 kilometres at 60 kilometres per hour. "
                 "At what time does the train arrive?",
     "answer": "It covers 80 * 2.5 = 200 km by 11:45, stops until 12:05, and needs 45 / 60 = 0.75 hours, or 45 "
               "minutes, more. It arrives at 12:50. #### 12:50"},
]
MMLU_STYLE = [
    {"question": "Which of the following best explains why the water wheel of a mill turns faster in spring than "
                 "in late summer?",
     "choices": ["The river carries more water after the snow on the hills has melted",
                 "The millstones are lighter in spring", "Cold air reduces the friction in the wooden gears",
                 "The miller adjusts the sluice gate less often in spring"]},
]

# A blog post that quotes the first GSM8K-style question (different case and punctuation, same words).
PLANTED_PAGE = """<html><head><title>Homework help: the muffin problem</title></head><body>
<nav>Home | Posts | About</nav>
<article><h1>Homework help: the muffin problem</h1>
<p>Last night my daughter brought home a maths worksheet, and one of the word problems had the whole family
arguing over the kitchen table for the better part of an hour. I am writing it down here because I suspect
other parents will meet the same question sooner or later, and because the way we solved it taught us all
something about reading a problem slowly.</p>
<p>Here is the problem exactly as it was printed on the sheet: "MARIA bakes 3 trays of muffins every morning;
each tray holds 12 muffins! She sells the muffins for 2 dollars each, and gives 5 muffins to her neighbor
every day... how much money does Maria make from selling muffins in one week?"</p>
<p>My son wanted to multiply everything at once, which gave him a number far too large. My daughter noticed
that the muffins given to the neighbour are never sold, so they have to come off before the price is applied.
We drew the trays on a piece of paper, counted the muffins that were left for sale each day, and only then
multiplied by the price and by the days of the week.</p>
<p>The lesson we took away is simple. Read the whole question before you touch a number, write down what
happens each day, and check whether every item really ends up being sold. The teacher, to her credit, marked
the careful working more generously than the final answer.</p>
</article><footer>Family notes, 2026</footer></body></html>"""

# The same subject, sharing only short common phrases with the evaluation items.
COMMON_PHRASES_PAGE = """<html><head><title>Running a small bakery stall</title></head><body>
<nav>Home | Posts | About</nav>
<article><h1>What I learned running a small bakery stall</h1>
<p>For two summers I ran a bakery stall at the Saturday market, and people still ask me how much money does
a stall like that really make. The honest answer is that it depends on the weather, on the queue at the
coffee van next door, and on whether you remembered to bring enough change.</p>
<p>I baked every morning before dawn. Each tray held a dozen rolls, and by nine o'clock the first trays were
usually gone. In one week of good weather I could sell twice what I sold in a week of rain, which taught me
to plan the baking around the forecast rather than around my own optimism.</p>
<p>Customers often asked which of the following they should try first: the seeded loaf, the cinnamon buns or
the rye. I always pointed them to the rye, because it keeps for days and brings people back the next week.
The buns sold themselves, and the seeded loaf was for the regulars who knew what they wanted.</p>
<p>If you are thinking of starting a stall, keep a notebook. Write down what you baked, what you sold and
what you gave away at closing time, and after a month the numbers will tell you more than any advice.</p>
</article><footer>Family notes, 2026</footer></body></html>"""

CLEAN_PAGE = """<html><head><title>Mending a garden gate</title></head><body>
<article><h1>Mending a garden gate that drags</h1>
<p>Our garden gate had been dragging on the path for a year before I finally took a look at it. The hinges
were fine, but the post had leaned a few degrees towards the road, so the latch side of the gate sat lower
than it should and scraped the gravel every time we opened it.</p>
<p>Rather than dig out the post, I fitted a diagonal brace from the bottom of the hinge side to the top of the
latch side. A brace in that direction works in compression and lifts the far corner of the gate, which is
exactly what a sagging gate needs. It took an afternoon, two lengths of treated timber and a handful of screws.</p>
<p>The gate now swings clear of the path and closes with a satisfying click. If yours drags, check the post
before you blame the hinges, and remember that the brace must run up from the hinge side, never down.</p>
</article></body></html>"""


def write_eval_sets(folder: Path) -> dict[str, Path]:
    """gsm8k-style.jsonl, mmlu-style.jsonl (question + choices) and a plain-text set."""
    folder.mkdir(parents=True, exist_ok=True)
    gsm = folder / "gsm8k-style.jsonl"
    gsm.write_text("".join(json.dumps(item) + "\n" for item in GSM8K_STYLE))
    mmlu = folder / "mmlu-style.jsonl"
    mmlu.write_text("".join(json.dumps(item) + "\n" for item in MMLU_STYLE))
    text = folder / "notes.txt"
    text.write_text("The parish records were kept in the vestry chest until the flood of 1881 carried the chest "
                    "downstream to the mill race.\n\nShort item.\n")
    return {"gsm8k-style": gsm, "mmlu-style": mmlu, "notes": text}
