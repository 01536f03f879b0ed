"""The embedded demo web site and its WARC serialization.

This module owns gristmill's default input: a small web site that the project writes itself, so the
quickstart job runs on data we may ship (no third-party text) and every curation step has something to
do. `build_demo_site` is the site model: a deterministic list of `DemoPage` responses across four hosts,
with the mix a real crawl has (articles wrapped in boilerplate, listing pages, syndicated near-duplicates
and exact copies, spam and other low-quality pages, non-English pages, PII inside good articles,
non-HTML responses, errors and redirects, and two pages whose declared charset lies). `write_demo_warc`
turns that model into a byte-identical gzipped WARC/1.1; a later crawler can serve the same pages over
HTTP, which is why the model knows nothing about WARC.

The prose comes from a bank of hand-written sentence templates on everyday topics. Each template has
inline choices (`[a|b]`), per-article setting slots (`{town}`, `{river}`, ...) and number ranges
(`{n:LO:HI}`), so articles on one topic share a style but not their word 5-grams: dedup must find the
syndicated copies, not mistake two articles about bread for each other.

    python -m gristmill.pipeline.demo_web OUT.warc.gz [--seed N]
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import email.utils
import hashlib
import html
import http
import io
import json
import os
import random
import re
import struct
import unicodedata
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

# What each page is for; the pipeline never reads this, tests and the report do.
ARTICLE = "article"
LISTING = "listing"
SYNDICATED = "syndicated"  # near-duplicate of an article on another host
EXACT_COPY = "exact_copy"  # same article text under another URL
LOW_QUALITY = "low_quality"
NON_ENGLISH = "non_english"
CHARSET_MISMATCH = "charset_mismatch"  # declared charset differs from the body's encoding
NON_HTML = "non_html"
ERROR = "error"  # 4xx and 3xx responses
PAGE_KINDS = (ARTICLE, LISTING, SYNDICATED, EXACT_COPY, LOW_QUALITY, NON_ENGLISH, CHARSET_MISMATCH,
              NON_HTML, ERROR)

# PII planted in otherwise good articles, all from reserved documentation ranges (RFC 2606 domains,
# 555-01xx numbers, RFC 5737 addresses), so redaction tests have known spans and nothing is real.
DEMO_PII = ("jane.doe@example.com", "+1 555 0100", "192.0.2.10", "+1 202 555 0147",
            "orders@example.org", "john.smith@example.net")

# Every WARC-Date is this instant plus the page's index in seconds: a fixed clock makes the file
# byte-identical across runs.
CRAWL_START = dt.datetime(2024, 6, 1, 9, 0, 0, tzinfo=dt.timezone.utc)
# Record ids are uuid5 under this namespace, from (seed, index, record type, URL).
_RECORD_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "http://demo.test/gristmill-demo-web")
_USER_AGENT = "gristmill-demo-crawler/0.1 (+http://demo.test/)"


@dataclass
class DemoPage:
    """One HTTP response of the demo site: what a server at `host` answers for GET `path`."""

    host: str
    path: str
    status: int
    content_type: str
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)  # extra HTTP headers (Location, ...)
    kind: str = ARTICLE

    @property
    def url(self) -> str:
        return f"http://{self.host}{self.path}"


# --------------------------------------------------------------------------------------------------
# The text bank. Templates are one or two sentences; `[a|b]` picks one alternative, `{slot}` comes
# from the article's setting, `{n:LO:HI}` is a fresh integer. Alternatives never nest.

_TOWNS = ["Ashby Ford", "Millbrook", "Harrowgate Green", "Kestrel Bridge", "Fenwick", "Oakmere",
          "Thornby Cross", "Lowater", "Brampton Hythe", "Eldham", "Wrenfield", "Stonebridge Magna",
          "Halloway", "Marlow End", "Pennick", "Greyhaven", "Dunmore Quay", "Sallow Green", "Cobbleton",
          "Ridgeway St Anne"]
_RIVERS = ["Wend", "Lissop", "Merrow", "Tallow", "Brenning", "Orrin", "Fenny", "Sedge", "Willet",
           "Carrow", "Hobb", "Ember"]
_HILLS = ["Crow Hill", "Beacon Edge", "High Stile", "Gallows Knoll", "Whinmoor", "Hartside", "Long Tor",
          "Sheepwash Bank", "Ravens Scar"]
_FIRST_NAMES = ["Margaret", "Thomas", "Ada", "Samuel", "Elsie", "Walter", "Priya", "Owen", "Ruth",
                "Daniel", "Hannah", "Kwame", "Iris", "George", "Mei", "Albert", "Nora", "Felix", "Grace",
                "Yusuf"]
_SURNAMES = ["Hale", "Cotter", "Ashworth", "Penrose", "Fielding", "Okafor", "Lindqvist", "Marsh",
             "Tanner", "Bellamy", "Crabtree", "Holroyd", "Varma", "Whitlock", "Prentice", "Dunne"]
_STREETS = ["Mill Lane", "Tanners Row", "Bridge Street", "Chapel Walk", "Water Lane", "Market Hill",
            "Ropewalk", "Friars Gate", "Orchard Street", "Sheep Street"]
_GRAINS = ["wheat", "barley", "oats", "rye", "spelt"]
_BREADS = ["sourdough loaves", "rye bread", "seeded rolls", "cottage loaves", "soda bread", "barm cakes"]
_FLOWERS = ["lavender", "borage", "comfrey", "foxgloves", "marjoram", "phacelia", "catmint"]
_VEGETABLES = ["runner beans", "leeks", "potatoes", "courgettes", "kale", "onions", "beetroot",
               "carrots"]
_BIRDS = ["kingfisher", "grey heron", "dipper", "little grebe", "grey wagtail"]
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December"]
_WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]

_TOPICS: dict[str, dict[str, list[str]]] = {
    "milling": {
        "titles": [
            "The [water mill|corn mill] at {town} [turns again|is grinding again]",
            "[What|Everything] a miller [knew|had to know] about stones",
            "[Inside|A day inside] the {town} mill",
            "How the {river} [kept|fed] {town} in flour",
            "[Restoring|Rebuilding] the great spur wheel at {town}",
        ],
        "sentences": [
            "The [water mill|old mill] at {town} was first recorded in {year}, when the {river} ran "
            "[fast|deep] enough to turn [two|three] pairs of stones for most of the year.",
            "A pair of millstones can weigh more than {n:800:1500} kilograms, and the miller had to lift "
            "the runner stone [every few weeks|twice a season] to recut its grooves by hand.",
            "Those grooves, called the dress, carry the meal outward from the eye of the stone toward "
            "[the rim|its edge], where it [drops|falls] into a wooden chute and on down to the sacks.",
            "{person}, who [ran|kept] the mill for {n:12:40} years, noted in the ledger that a dry summer "
            "could [halve the work|cut the work by half] because the pond no longer filled overnight.",
            "[Most|Many] country mills ground for local farmers rather than for sale, keeping a share of "
            "the {grain} as payment, a fee the old account books call the toll.",
            "The wheel is [overshot|breastshot], which means the water [meets|strikes] it "
            "[high up|near the top] and [drives|turns] it mostly by weight rather than by speed.",
            "Upstairs, a [sack hoist|chain hoist] driven from the main shaft lifted full sacks to the "
            "[bin floor|top floor], so that gravity could do [the rest|the rest of the work] on the way "
            "down.",
            "When roller mills spread in the [1870s|1880s], many stone mills lost their trade on price, "
            "and the one at {town} [switched to|turned to] grinding animal feed for the farms nearby.",
            "Volunteers rebuilt the [pit wheel|great spur wheel] in {year2}, carving new cogs from "
            "[apple|hornbeam|beech] wood, because the softer wood takes the wear and is cheaper to "
            "replace than iron.",
            "On open days the mill grinds about {n:40:120} kilograms of wholemeal flour, which "
            "[sells out|is gone] [before noon|within an hour] at the little shop beside the sluice gate.",
            "A miller [judged|checked] the grind by rubbing meal between thumb and finger, a habit "
            "[some say|often said] to be the origin of the phrase rule of thumb, although historians "
            "doubt it.",
            "Flour dust hanging in the air is [surprisingly|remarkably] explosive, so millers banned open "
            "flames [indoors|inside the building] and kept their lamps behind thick glass.",
            "The millpond above the weir now shelters [moorhens|ducks] and [frogs|newts], and a {bird} "
            "is often seen [on the sluice|by the tailrace] early in the morning.",
            "Records in the county archive show that the mill changed hands {n:3:7} times between {year} "
            "and {year2}, [usually after a flood|as trade rose and fell] [on the river|in the valley].",
            "A small turbine [fitted|installed] in the [old wheel pit|tailrace] now makes enough "
            "electricity for [about|roughly] {n:10:40} homes, and the surplus [goes|is sold] to the grid.",
            "Grinding slowly keeps the flour cool, which [some bakers|many bakers] believe protects the "
            "flavour of the wheat germ and [its oils|the oils it carries].",
        ],
    },
    "bread": {
        "titles": [
            "[Why|How] {first} bakes {bread} [before dawn|every {weekday}]",
            "[A beginner's guide|Notes] to [sourdough|a first sourdough starter]",
            "The {town} community oven [is lit again|comes back to life]",
            "What salt [really|actually] does in bread",
            "[Baking|Bread] with {grain} from the {river} valley",
        ],
        "sentences": [
            "A basic loaf needs only flour, water, salt and yeast, yet home bakers in {town} argue "
            "[every week|endlessly] about how long the dough should rest.",
            "{first} makes {bread} every {weekday}, mixing the dough [the night before|around midnight] "
            "so the [yeast|starter] has [time|plenty of time] to do its work.",
            "A sourdough starter is [nothing more than|simply] flour and water left until wild yeasts and "
            "lactic bacteria [settle in|take hold], and most starters need feeding once a day.",
            "Kneading develops gluten, the stretchy network of proteins that traps the gas "
            "[given off|released] [during fermentation|by the yeast] and lets the loaf rise.",
            "A hot oven gives a [darker|thicker] crust, and a splash of water on the oven floor keeps the "
            "surface soft long enough for the loaf to [spring|open up] [fully|properly].",
            "Wholemeal flour absorbs more water than white flour, so a recipe written for white flour "
            "[usually|often] needs an extra {n:30:80} millilitres for each kilogram.",
            "The bakery on {street} has sold {bread} since {year2}, and a queue [forms|starts] well before "
            "the shutters go up at [seven|half past six].",
            "Salt does more than [add flavour|season the dough]: it tightens the gluten and steadies the "
            "yeast, which is why bread made without it [spreads|slumps] in the oven and tastes flat.",
            "Day-old bread is not so much drying out as [going stale from within|changing inside], as the "
            "starch in the crumb [slowly|gradually] stiffens back into order.",
            "During the years of rationing, households stretched their flour with [potato|barley|oats], "
            "and [a few|some] of those recipes still turn up at the {town} [harvest fair|autumn show].",
            "One test of proofing is to press the dough [gently|lightly] with a floured finger: if the "
            "dent fills back slowly, the loaf is ready [for the oven|to bake].",
            "{person} still uses a [proving basket|banneton] [inherited|handed down] from a grandmother, "
            "dusted with rice flour so the dough slides out cleanly.",
            "Rye behaves [very|quite] differently from wheat, forming a [sticky|dense] paste rather than "
            "a stretchy dough, which is why rye loaves are [usually|mostly] baked in tins.",
            "Slashing the top of the loaf with a [razor|sharp blade] just before it goes in lets steam "
            "escape where the baker wants, instead of [tearing|splitting] the side.",
            "The village oven at {town} is lit on the first {weekday} of the month, and neighbours "
            "[bring|carry over] their own dough to share the heat as the bricks cool.",
            "[Good|Decent] bread [needs|asks for] patience more than [skill|equipment], and {first} "
            "[admits|says] that the first {n:3:9} loaves [went to the ducks|were barely edible].",
        ],
    },
    "rivers": {
        "titles": [
            "[Walking|Following] the {river} from {town} to {town2}",
            "[Otters|Salmon] are back in the {river}",
            "[Why|How] the {river} [floods|rises so fast]",
            "The [packhorse|old stone] bridge at {town}",
            "[Counting|Surveying] mayflies on the {river}",
        ],
        "sentences": [
            "The {river} rises on the moor above {hill} and [runs|flows] some {n:20:70} kilometres before "
            "it meets the sea [below|beyond] {town2}.",
            "After heavy rain the river can rise more than a metre [in a few hours|overnight], and the "
            "gauge under the footbridge at {town} records every change.",
            "Otters came back to the {river} in the [1990s|last twenty years], once the water improved and "
            "the [works|factories] along its banks [closed|shut down].",
            "A meander [grows|migrates] over decades because faster water on the outer bank [cuts away|"
            "erodes] the soil, while slower water on the inside drops [gravel|silt].",
            "The [stone|packhorse] bridge at {town} has {n:3:7} arches and dates from {year}, though its "
            "parapet was [rebuilt|repaired] after the floods of {year2}.",
            "Volunteers from the {society} survey mayfly larvae and freshwater shrimp every spring, "
            "because their numbers say more about water quality than any single chemical test.",
            "The towpath follows the {river} from {town} to {town2}, a walk of about {n:8:25} kilometres "
            "with [several|a few] good places to stop for lunch.",
            "In the dry summer of {year2}, the river fell so low that an old stone ford appeared "
            "[for the first time in living memory|again after decades].",
            "The water meadows [beside|along] the river were deliberately flooded each February to "
            "[warm|protect] the soil and bring an early crop of hay.",
            "Salmon still run up the {river} [in autumn|each October], leaping the weir at {town}, where "
            "a fish pass was [built|installed] in {year2}.",
            "Paddlers and anglers have agreed a [calendar|timetable] so that canoes keep off the quiet "
            "upper reaches during the [spawning|nesting] season.",
            "The river carries [an enormous|a surprising] load of silt and sand, and after a big storm "
            "the current runs the colour of [milky tea|strong coffee] for [days|a day or two].",
            "The name {river} is [thought|believed] to come from an old word for [winding|bright|swift] "
            "water, although local historians [argue|disagree] about [its spelling|the origin].",
            "A rowing ferry crossed near {town2} until {year2}, carrying workers and [bicycles|handcarts] "
            "for [a penny|two pence] each way.",
            "[Herons|A pair of herons] [fish|stand] in the shallows below the weir [most mornings|at dawn],"
            " and a {bird} nests [under|beneath] the arches of the bridge.",
        ],
    },
    "weather": {
        "titles": [
            "{month} [rainfall|weather] at {town}: [a wet month|the numbers]",
            "[Why|How] fog [gathers|forms] in the {river} valley",
            "[Fifty years|Decades] of weather notebooks",
            "The [great|big] storm of {year2}",
            "[Reading|Trusting] the barometer",
        ],
        "sentences": [
            "The rain gauge at {town} logged {n:40:130} millimetres in {month}, [almost double|well above] "
            "the usual amount for the time of year.",
            "Fog gathers along the river on calm nights because cooler air [drains|slides] down the "
            "slopes and settles over the [water meadows|valley floor].",
            "A [falling|dropping] barometer remains one of the [best|most reliable] home forecasting "
            "tools: a fall of a few hectopascals over an afternoon [usually|often] means wind and rain.",
            "Ground frost can appear well into [May|early June] in sheltered gardens, even when the "
            "thermometer by the back door stays above freezing.",
            "Fair-weather clouds that [build|grow] upwards through the early afternoon often turn into "
            "[showers|thunderstorms] by the evening.",
            "The storm of {month} {year2} felled {n:20:200} trees around {town} and left [several|many] "
            "farms without power for [two days|a long weekend].",
            "{person}, a retired [teacher|postman|engineer], has kept daily weather records since {year2}, "
            "and the notebooks now fill [a whole shelf|three boxes].",
            "Dew settles when grass loses heat faster than the air above it on clear nights, which is why "
            "cloudy nights [tend to be|are usually] drier underfoot.",
            "A rainbow only ever appears opposite the sun, so an evening rainbow [must be|is always] "
            "[in the east|to the east].",
            "The summer turned out [warmer|drier|wetter] than forecast, with {n:5:25} days above "
            "twenty-five degrees at the hilltop station above {town}.",
            "Wind direction matters as much as [strength|speed]: an easterly in January brings bitter air "
            "off the [continent|land], while westerlies bring [mild|damp] weather [from the sea|instead].",
            "Snow has become [rare|uncommon] in {town}, though older neighbours recall drifts higher "
            "than the [hedges|field gates] in the winter of {year2}.",
            "Forecasts have improved [enormously|a great deal]: a five-day forecast now is about as "
            "reliable as the next-day forecast [was|used to be] forty years ago.",
            "[Thunder|A thunderstorm] [rolling|echoing] around {hill} [sounds|seems] [louder|closer] than "
            "it is, because the [valley sides|hills] [bounce|reflect] the sound back and forth.",
        ],
    },
    "history": {
        "titles": [
            "What the parish records of {town} [tell us|reveal]",
            "The [market charter|old market] of {town}",
            "[Lost trades|Forgotten trades] of {street}",
            "When the railway came to {town}",
            "The [great fire|fire] of {year}",
        ],
        "sentences": [
            "The parish register of {town} begins in {year}, though its earliest pages were stained by a "
            "leaking roof in the [vestry|church tower].",
            "The market charter was granted in {year}, and stallholders paid a toll for every [cart|"
            "animal] that came over the bridge on market day.",
            "{person} opened the first school in {year2} in a converted [barn|chapel], teaching "
            "{n:20:60} children of every age in a single room.",
            "The railway reached {town} [in|around] {year2}, and the population [doubled|grew quickly] "
            "within a generation as workshops and new trades arrived.",
            "The {society} has gathered more than {n:300:2000} old photographs, most of them given by "
            "families [clearing|sorting out] their lofts.",
            "Street names often remember lost trades: {street} was home to [a tannery|a ropewalk|the "
            "smithy|a brewery] until {year2}.",
            "A fever epidemic in the [1850s|1860s] pushed the town into building its first proper water "
            "supply, paid for by public subscription.",
            "Recorded interviews give what the written records leave out: what it was like to queue at "
            "the pump, or which songs families sang at the harvest supper.",
            "The old milestone on the lane to {town2} still shows the distance in miles and furlongs, "
            "though hardly any [drivers|walkers] notice it [now|today].",
            "A fire in {year} burned [most|half] of the thatched cottages on {street}, which is why the "
            "present houses there are [brick|built of brick].",
            "Maps from {year} mark a windmill on the spot where the [car park|play area] now is, and no "
            "trace of it survives above ground.",
            "Letters written by {person} describe the hard winter of {year2}, when the {river} froze "
            "thick enough for people to [skate|walk] across.",
            "The war memorial carries {n:12:60} names, and researchers have pieced together the life "
            "behind [almost every one|each name] from census records.",
            "[Church|Manor] accounts from {year} list payments for [mending the bridge|ringing the bells|"
            "killing rats], [a glimpse|a window] into [ordinary|everyday] life [long ago|at the time].",
        ],
    },
    "cycling": {
        "titles": [
            "The [Saturday|weekend] ride from {town}",
            "[Climbing|Conquering] {hill} [by bike|on two wheels]",
            "A new cycle path [between|linking] {town} and {town2}",
            "[Tyres, chains|Tyre pressure] and other [small|simple] things",
            "[Riding|Cycling] to work through the [winter|year]",
        ],
        "sentences": [
            "The weekend club ride sets off from the {town} market cross at [eight|nine] o'clock and "
            "covers about {n:40:110} kilometres at a steady pace.",
            "Tyre pressure makes a bigger difference than most riders expect: wider tyres at slightly "
            "lower pressure roll [just as fast|nearly as fast] on broken lanes.",
            "The climb over {hill} is only {n:2:6} kilometres long, yet its hardest ramp hits {n:10:18} "
            "per cent just below the [top|summit].",
            "Wiping the chain after [wet|muddy] rides and oiling it [lightly|sparingly] can make the "
            "[gears|drivetrain] last twice as long.",
            "{first} began riding to work in {year2} and now covers nearly {n:1500:5000} kilometres a "
            "year on quiet lanes and the [canal|river] towpath.",
            "The new traffic-free path linking {town} and {town2} follows an old railway line, so its "
            "slopes stay [gentle|easy] all the way.",
            "Lights are not only about seeing the road: a steady rear light makes a rider visible from "
            "[hundreds of metres|a long way] behind.",
            "Eating a little every half hour on long rides prevents the sudden fatigue that cyclists "
            "[call|know as] hitting the wall.",
            "The club runs a free repair evening on the [first|second] {weekday} of each month, where "
            "volunteers mend [punctures|brakes|gears] for whoever turns up.",
            "Riding in a group can save [up to|as much as] a third of your effort, because the riders "
            "behind sit out of the wind of those in front.",
            "A cargo bike scheme in {town} lends bikes to families for a fortnight at a time, and has "
            "replaced {n:50:400} car journeys [so far|this year].",
            "Low gears were once seen as an admission of weakness, yet a [compact|small] front ring makes "
            "hilly lanes [possible|pleasant] for riders of any age.",
            "[Mudguards|Full mudguards] [are|look] [unfashionable|old-fashioned], but [the rider|anyone] "
            "[behind you|following] on a wet [morning|ride] will [thank you|be grateful] for them.",
        ],
    },
    "gardening": {
        "titles": [
            "[Growing|A year of] {vegetables} on the {street} allotments",
            "[Slugs|Snails], [mulch|compost] and [patience|other lessons]",
            "The {town} seed swap [returns|is back]",
            "[Winter pruning|Pruning] [for beginners|without fear]",
            "[Bees|Bumblebees] and {flower} in a [small|town] garden",
        ],
        "sentences": [
            "Broad beans sown in [October|late autumn] stand sturdy through the winter and crop weeks "
            "ahead of spring sowings.",
            "The allotments on {street} now have {n:30:90} plots, and the waiting list is longer than it "
            "has been [for years|in living memory].",
            "{first} swears by a thick mulch, spreading [compost|leaf mould] five centimetres deep around "
            "the {vegetables} to hold water in and keep weeds down.",
            "Slugs remain the worst nuisance in wet summers, and a few evening hunts by torch work "
            "[better than|as well as] [pellets|anything from a shop].",
            "A compost heap wants a mix of wet green waste such as [grass clippings|vegetable peelings] "
            "and dry brown waste such as [cardboard|straw|dead leaves], turned every few weeks.",
            "Outdoor tomatoes ripen best against a south-facing wall, where the brick holds warmth "
            "[into the night|through the evening].",
            "Bumblebees visit the {flower} from April until September, so a few clumps beside the "
            "{vegetables} [help|improve] pollination.",
            "Rain from a shed roof can fill a water butt in a single wet afternoon, and seedlings "
            "[prefer|do better on] it than mains water.",
            "Rotating crops simply means not growing the same family of vegetables in the same bed two "
            "years running, which stops soil [pests|diseases] building up.",
            "The seed swap at the {town} library each {month} draws gardeners carrying [envelopes|jars] "
            "of home-saved seed, some of it kept in the valley for generations.",
            "Pruning fruit trees in late winter lets light and air into the middle of the tree, which "
            "cuts [disease|scab] and helps next year's crop.",
            "Even a [small|modest] pond brings in frogs, newts and [dragonflies|damselflies] within one "
            "summer, and the frogs repay the favour by eating slugs.",
            "Hardening off young plants over ten days, out by day and back in after dark, avoids the "
            "shock that can [stunt|stall] their growth.",
            "{person} keeps a [notebook|diary] of [sowing|planting] dates and first frosts, and after "
            "{n:5:30} years it [is|has become] [more useful|more reliable] than any seed packet.",
        ],
    },
    "science": {
        "titles": [
            "[Why|How come] the sky is blue, [explained|in plain words]",
            "[What makes bread rise|Why bread rises]",
            "[Why|How] ice floats, and why it matters",
            "The [science|physics] of a [flask|thermos]",
            "[Why|How] a compass points north",
        ],
        "sentences": [
            "The sky looks blue because molecules in the air scatter short blue wavelengths of sunlight "
            "[much|far] more strongly than the longer red ones.",
            "At sunset the light crosses [more|a much longer stretch] of atmosphere, so most of the blue "
            "is scattered away before it reaches us and the [reds|oranges] remain.",
            "Yeast [feeds on|eats] sugars in the dough and gives off carbon dioxide, and the gluten "
            "network [stretches|inflates] like a balloon around each bubble.",
            "Ice floats because water expands as it freezes, [arranging|locking] its molecules into an "
            "open crystal that is less dense than the liquid.",
            "If ice sank, ponds would freeze from the bottom up, and [very little|almost nothing] could "
            "survive a hard winter in them.",
            "A vacuum flask keeps tea hot by removing the air between two glass walls, since heat cannot "
            "[cross|travel across] an empty gap by conduction or convection.",
            "The silvered walls of the flask [reflect|bounce back] infrared radiation, which closes the "
            "last [route|path] by which heat could escape.",
            "A compass needle is a small magnet that lines up with the magnetic field of the Earth, "
            "which is generated by molten iron moving in the outer core.",
            "Magnetic north [wanders|drifts] by [tens of kilometres|several kilometres] a year, so maps "
            "note the difference between true north and magnetic north [with a date|for a given year].",
            "Salt melts ice on roads because dissolved salt lowers the freezing point of water, though it "
            "[works poorly|stops working] in very hard frost.",
            "Onions make eyes water because cutting them releases a gas that forms a mild acid when it "
            "meets the moisture of the eye.",
            "Seasons come from the tilt of the Earth, not its distance from the sun: in June the northern "
            "half leans toward the sun and [receives|gets] its light more directly.",
            "A rainbow forms when sunlight is bent, reflected inside raindrops and bent again, splitting "
            "white light into its colours [at about|near] forty-two degrees.",
            "[Static|Static electricity] builds up when two materials [rub|are rubbed] together and "
            "electrons move from one to the other, which is why a jumper crackles in dry weather.",
        ],
    },
}

# Topic-free sentences that any article may borrow, the glue that real features carry.
_GENERAL_SENTENCES = [
    "Readers who would like to know more can [visit|call in at] the {town} library on {street}, where "
    "the staff keep a [small|growing] collection of local material.",
    "None of this would have happened without volunteers who gave up their [weekends|evenings], and "
    "[several|a few] of them told us they would happily do it again.",
    "It is a [small|modest] detail, yet it says [a lot|plenty] about how families in {town} lived and "
    "worked.",
    "As so often in the valley, the story turned out to be [more complicated|more interesting] than "
    "[anyone|most of us] first thought.",
    "We spoke to {person2}, who has lived in {town2} for {n:10:60} years and remembers the changes "
    "[clearly|well].",
    "The next open evening falls on the [first|last] {weekday} of {month} at the [village hall|library], "
    "and newcomers are always welcome.",
    "Anyone with [memories|photographs] or old letters worth sharing can leave a note at the museum "
    "office.",
    "[Tea and cake|Coffee and biscuits] will be served afterwards, and the collection [goes|will go] to "
    "the upkeep of the [hall|building].",
]

# Sentences that plant PII in an otherwise good article (values from DEMO_PII).
_PII_SENTENCES = [
    "Anyone with photographs of the old mill can write to the archivist, Jane Doe, at "
    "jane.doe@example.com, or leave a message on +1 555 0100.",
    "Ride sign-ups run on a small server in the clubhouse at 192.0.2.10, so please be patient if the "
    "page is slow on a Saturday morning, or call the secretary on +1 202 555 0147.",
    "Seed orders for the autumn swap can be sent to orders@example.org, and the chair of the "
    "committee, John Smith, answers questions at john.smith@example.net.",
]

# Hand-written non-English pages: real prose, so a language identifier has something to recognize.
_FOREIGN_PAGES = {
    "de": ("Die alte Wassermühle am Fluss", [
        "Die alte Wassermühle am Fluss wurde im Jahr 1782 gebaut und war bis in die sechziger Jahre in "
        "Betrieb. Heute kümmert sich ein kleiner Verein um das Gebäude, und an jedem ersten Sonntag im "
        "Monat wird wieder Mehl gemahlen. Die Besucher können zusehen, wie das große Wasserrad langsam "
        "anläuft und die Mühlsteine sich zu drehen beginnen.",
        "Im Hofladen gibt es frisches Brot aus dem Holzofen, das nach einem alten Rezept mit Sauerteig "
        "gebacken wird. Viele Familien kommen schon am frühen Morgen, weil die Laibe meistens vor dem "
        "Mittag ausverkauft sind. Wer selbst backen möchte, kann das Mehl in kleinen Tüten mit nach "
        "Hause nehmen.",
        "Im Sommer führt ein Wanderweg von der Mühle am Ufer entlang bis zum nächsten Dorf. Unterwegs "
        "sieht man mit etwas Glück einen Eisvogel oder einen Graureiher, der reglos im flachen Wasser "
        "steht. Am Ende des Weges wartet ein Gasthaus mit Garten, in dem man sich bei Kaffee und Kuchen "
        "ausruhen kann.",
    ]),
    "fr": ("Le vieux moulin de la vallée", [
        "Le vieux moulin à eau du village a été construit au dix-huitième siècle, au bord d'une petite "
        "rivière qui descend des collines. Pendant plus de cent ans, les paysans des environs y ont "
        "apporté leur blé pour le faire moudre. Aujourd'hui, une association de bénévoles a restauré la "
        "grande roue et les meules, et le moulin tourne de nouveau pendant les journées du patrimoine.",
        "Le boulanger du quartier prépare chaque matin un pain au levain avec cette farine locale. Il "
        "explique que la pâte doit reposer toute la nuit pour développer son goût et une belle croûte "
        "dorée. Les habitants font la queue devant la boutique dès sept heures, surtout le samedi, jour "
        "de marché.",
        "Au printemps, le sentier qui longe la rivière est couvert de fleurs sauvages. Les promeneurs "
        "s'arrêtent souvent près du pont de pierre pour observer les truites dans l'eau claire. C'est "
        "une balade facile d'environ deux heures, idéale pour les familles avec des enfants.",
    ]),
    "es": ("El molino harinero del pueblo", [
        "El antiguo molino harinero del pueblo se levantó a orillas del río a finales del siglo "
        "dieciocho. Durante generaciones, los agricultores de la comarca traían allí su trigo y su "
        "cebada para convertirlos en harina. Hoy el edificio pertenece al ayuntamiento y un grupo de "
        "voluntarios lo abre a los visitantes los fines de semana.",
        "En la panadería de la plaza todavía se hace el pan de forma tradicional, con masa madre y horno "
        "de leña. La panadera cuenta que empieza a trabajar a las cuatro de la madrugada para que las "
        "barras estén listas antes de que abran las tiendas. Los domingos también prepara una empanada "
        "de verduras que se vende muy rápido.",
        "Si hace buen tiempo, merece la pena recorrer el camino que sigue el río hasta la siguiente "
        "aldea. El paseo dura algo más de una hora y pasa junto a huertos, olivos y un pequeño puente de "
        "piedra. Al final hay una fuente de agua fresca y unos bancos a la sombra donde se puede "
        "descansar.",
    ]),
    "it": ("Il vecchio mulino sul torrente", [
        "Il vecchio mulino ad acqua sorge lungo il torrente, appena fuori dal paese, e risale alla fine "
        "del Settecento. Per più di un secolo i contadini della valle vi hanno portato il grano e il "
        "granturco da macinare. Oggi un gruppo di volontari ha restaurato la ruota e le macine, e nelle "
        "domeniche di primavera il mulino torna a funzionare.",
        "Nel forno della piazza si prepara ancora il pane con il lievito madre e la farina macinata a "
        "pietra. Il fornaio racconta che l'impasto deve riposare tutta la notte per avere una crosta "
        "croccante e un profumo intenso. La mattina presto davanti alla bottega c'è sempre una piccola "
        "fila di clienti.",
        "Chi ama camminare può seguire il sentiero che costeggia il torrente fino al borgo vicino. Lungo "
        "il percorso si incontrano orti, castagni e un ponte di pietra molto antico. La passeggiata dura "
        "circa un'ora ed è adatta anche ai bambini.",
    ]),
}
_FOREIGN_CHROME = {  # per language: (home label, footer line)
    "de": ("Startseite", "Alle Rechte vorbehalten."),
    "fr": ("Accueil", "Tous droits réservés."),
    "es": ("Inicio", "Todos los derechos reservados."),
    "it": ("Home", "Tutti i diritti riservati."),
}

# The two charset-mismatch pages: English with accented loanwords, so a wrong decode is visible.
_CAFE_PARAGRAPH = (
    "The new café on Bridge Street serves crème brûlée, a decent café au lait and, on Fridays, a "
    "jalapeño cornbread that has divided opinion. The owner admits that her first menu was a little "
    "naïve: she had planned a twelve-item pâtisserie counter before she discovered how early a pastry "
    "chef has to start. The façade, painted a deep green, still carries the faded lettering of the "
    "draper's shop that stood there for eighty years."
)
_WALKS_PARAGRAPH = (
    "Our walking group's autumn programme has something for everyone. The first outing ends at a small "
    "crêperie in the next village, where the owner, a retired maître d'hôtel, serves galettes with "
    "Gruyère and a glass of cider for €6.50. The second follows the old drovers' road past a ruined "
    "château folly built by a Victorian mill owner with a taste for the Loire. Regulars say the "
    "highlight is the café at the top of the pass, where the soup of the day comes with rye bread and, "
    "on cold days, a mug of glühwein."
)

# Words the syndicating site swaps when it republishes a story: a few edits, not a rewrite.
_SYNDICATION_EDITS = {"about": "around", "often": "frequently", "small": "little", "old": "former",
                      "every": "each", "began": "started", "nearly": "almost", "usually": "generally"}


# --------------------------------------------------------------------------------------------------
# The four sites: each has its own chrome, so boilerplate differs between copies of one story.

@dataclass(frozen=True)
class _Site:
    host: str
    name: str
    topics: tuple[str, ...]
    nav: tuple[tuple[str, str], ...]
    cookie_text: str
    footer_lines: tuple[str, ...]
    tagline: str


_NEWS = _Site(
    host="news.demo.test", name="The Valley Courier",
    topics=("history", "weather", "rivers", "cycling", "science"),
    nav=(("Home", "/"), ("Local", "/local/"), ("Weather", "/weather/"), ("Sport", "/sport/"),
         ("Science", "/science/"), ("Letters", "/letters/"), ("Subscribe", "/subscribe/")),
    cookie_text="We use cookies to personalise content and to analyse our traffic. By continuing to "
                "browse The Valley Courier you agree to our use of cookies.",
    footer_lines=("Copyright 2024 The Valley Courier Ltd. All rights reserved.",
                  "Registered in England, company number 00000000. Registered office: 1 Printing House "
                  "Yard.", "Advertise with us | Contact the newsroom | Complaints | Privacy policy"),
    tagline="News from the valley since 1887",
)
_BLOG = _Site(
    host="blog.demo.test", name="Crumbs and Cogs",
    topics=("bread", "milling", "gardening", "science"),
    nav=(("Home", "/"), ("Archive", "/archive/"), ("Recipes", "/tags/recipes/"), ("About me", "/about/"),
         ("Newsletter", "/newsletter/")),
    cookie_text="This blog uses cookies for statistics. Click Accept to hide this message, or read the "
                "cookie notice to change your settings.",
    footer_lines=("Crumbs and Cogs is a personal blog. Text and photographs copyright 2024, all rights "
                  "reserved.", "Powered by a very small static site generator. Subscribe by RSS."),
    tagline="Notes on bread, mills and muddy knees",
)
_SHOP = _Site(
    host="shop.demo.test", name="Millstone Supplies",
    topics=("bread", "milling", "gardening", "cycling"),
    nav=(("Shop", "/"), ("Grain mills", "/c/grain-mills/"), ("Baking", "/c/baking/"),
         ("Garden", "/c/garden/"), ("Guides", "/guides/"), ("Basket (0)", "/basket/")),
    cookie_text="Millstone Supplies uses essential cookies to run the basket and optional cookies for "
                "marketing. Manage your cookie preferences at any time.",
    footer_lines=("Free delivery on orders over 40 pounds. Returns accepted within 30 days.",
                  "Copyright 2024 Millstone Supplies. All rights reserved. VAT number GB000000000.",
                  "Terms and conditions | Delivery | Returns | Privacy"),
    tagline="Everything for the home miller and baker",
)
_FORUM = _Site(
    host="forum.demo.test", name="Valley Forum",
    topics=("weather", "cycling", "gardening", "rivers", "history", "bread"),
    nav=(("Forums", "/"), ("Latest", "/latest/"), ("Members", "/members/"), ("Search", "/search/"),
         ("Log in", "/login/"), ("Register", "/register/")),
    cookie_text="Valley Forum stores a session cookie so that you stay logged in. No tracking cookies "
                "are used.",
    footer_lines=("Valley Forum is run by volunteers. Posts are the opinions of their authors.",
                  "Copyright 2024 Valley Forum. All rights reserved. Forum rules | Moderators | Contact"),
    tagline="Talk about life in the valley",
)
_SITES = (_NEWS, _BLOG, _SHOP, _FORUM)

_ARTICLES_PER_SITE = {_NEWS.host: 18, _BLOG.host: 16, _SHOP.host: 6, _FORUM.host: 10}


# --------------------------------------------------------------------------------------------------
# Prose generation.

_CHOICE = re.compile(r"\[([^\[\]]*)\]")
_NUMBER = re.compile(r"\{n:(\d+):(\d+)\}")


def _spin(template: str, rng: random.Random, setting: dict[str, str]) -> str:
    """Fill one template: pick each `[a|b]` alternative, draw each `{n:LO:HI}`, then fill slots."""
    text = _CHOICE.sub(lambda m: rng.choice(m.group(1).split("|")), template)
    text = _NUMBER.sub(lambda m: str(rng.randint(int(m.group(1)), int(m.group(2)))), text)
    text = text.format_map(setting)
    return text[0].upper() + text[1:]


def _new_setting(rng: random.Random) -> dict[str, str]:
    """The people and places one article talks about, kept fixed within it so the story hangs together."""
    town, town2 = rng.sample(_TOWNS, 2)
    river = rng.choice(_RIVERS)
    first, first2 = rng.sample(_FIRST_NAMES, 2)
    surname, surname2 = rng.sample(_SURNAMES, 2)
    return {
        "town": town, "town2": town2, "river": river, "hill": rng.choice(_HILLS),
        "first": first, "person": f"{first} {surname}", "person2": f"{first2} {surname2}",
        "street": rng.choice(_STREETS), "grain": rng.choice(_GRAINS), "bread": rng.choice(_BREADS),
        "flower": rng.choice(_FLOWERS), "vegetables": rng.choice(_VEGETABLES), "bird": rng.choice(_BIRDS),
        "month": rng.choice(_MONTHS), "weekday": rng.choice(_WEEKDAYS),
        "year": str(rng.randint(1620, 1890)), "year2": str(rng.randint(1905, 2019)),
        "society": rng.choice([f"{town} Civic Society", f"Friends of the {river}",
                               f"{town} Heritage Group"]),
    }


@dataclass
class _Article:
    title: str
    author: str
    date: str  # display date, e.g. "12 March 2024"
    paragraphs: list[str]


def _compose_article(rng: random.Random, topic: str, pii_sentence: str | None = None) -> _Article:
    """One article of 250-900 words: a few sentences on its topic, then two neighbour topics, then glue.

    Capping the sentences taken from the main topic is what keeps two articles on one topic from
    sharing most of their 5-grams (and being clustered as near duplicates).
    """
    setting = _new_setting(rng)
    target_words = rng.randint(250, 900)
    secondary, tertiary = rng.sample([t for t in _TOPICS if t != topic], 2)
    # Sampling without replacement inside an article keeps it free of repeated sentences, which the
    # repetition rules would rightly punish.
    pool = (rng.sample(_TOPICS[topic]["sentences"], rng.randint(5, 9))
            + rng.sample(_TOPICS[secondary]["sentences"], rng.randint(3, 7))
            + rng.sample(_TOPICS[tertiary]["sentences"], len(_TOPICS[tertiary]["sentences"]))
            + rng.sample(_GENERAL_SENTENCES, len(_GENERAL_SENTENCES)))
    max_words = 900 - (len(pii_sentence.split()) if pii_sentence else 0)
    sentences: list[str] = []
    words = 0
    for template in pool:
        sentence = _spin(template, rng, setting)
        if words + len(sentence.split()) > max_words:
            break
        sentences.append(sentence)
        words += len(sentence.split())
        if words >= target_words:
            break
    if pii_sentence:
        sentences.insert(rng.randint(1, len(sentences)), pii_sentence)

    paragraphs = []
    while sentences:
        take = rng.randint(2, 4)
        paragraphs.append(" ".join(sentences[:take]))
        sentences = sentences[take:]
    title = _spin(rng.choice(_TOPICS[topic]["titles"]), rng, setting)
    author = f"{rng.choice(_FIRST_NAMES)} {rng.choice(_SURNAMES)}"
    date = f"{rng.randint(1, 28)} {rng.choice(_MONTHS[:5])} 2024"
    return _Article(title, author, date, paragraphs)


def _slug(title: str) -> str:
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")


# --------------------------------------------------------------------------------------------------
# HTML rendering.

def _esc(text: str) -> str:
    return html.escape(text, quote=False)


def _paragraphs_html(paragraphs: list[str]) -> str:
    return "\n".join(f"<p>{_esc(p)}</p>" for p in paragraphs)


def _document(site: _Site, title: str, main_html: str, *, lang: str = "en", meta_charset: bool = True,
              related: list[tuple[str, str]] | None = None, home_label: str = "Home",
              footer_extra: str = "") -> str:
    """A full HTML5 page in the site's chrome: cookie banner, header and nav, main, sidebar, footer."""
    nav = "".join(f'<li><a href="{href}">{_esc(home_label if href == "/" and label == "Home" else label)}'
                  f"</a></li>" for label, href in site.nav)
    sidebar = ""
    if related:
        links = "".join(f'<li><a href="{href}">{_esc(text)}</a></li>' for text, href in related)
        sidebar = (f'<aside class="sidebar"><h2>Related</h2><ul class="related">{links}</ul>'
                   f'<div class="newsletter"><h3>Newsletter</h3><p>Get the best of {_esc(site.name)} in '
                   f"your inbox every week.</p><form><input type=\"email\" placeholder=\"Your email\">"
                   f"<button>Sign up</button></form></div></aside>")
    footer = "".join(f"<p>{_esc(line)}</p>" for line in site.footer_lines)
    charset = '<meta charset="utf-8">\n' if meta_charset else ""
    return f"""<!DOCTYPE html>
<html lang="{lang}">
<head>
{charset}<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_esc(title)} | {_esc(site.name)}</title>
<link rel="stylesheet" href="/static/site.css">
</head>
<body>
<div class="cookie-banner" id="cookie-consent"><p>{_esc(site.cookie_text)}</p>
<button>Accept all</button> <button>Settings</button></div>
<header class="site-header"><a class="logo" href="/">{_esc(site.name)}</a>
<span class="tagline">{_esc(site.tagline)}</span>
<nav class="menu"><ul>{nav}</ul></nav></header>
<div class="layout">
<main id="content">
{main_html}
</main>
{sidebar}
</div>
<footer class="site-footer">{footer}{footer_extra}</footer>
</body>
</html>
"""


def _article_main(article: _Article, site: _Site) -> str:
    if site is _FORUM:
        return _forum_thread_main(article)
    body = _paragraphs_html(article.paragraphs)
    extra = ""
    if site is _SHOP:
        extra = ('<div class="product-box"><p class="price">From 24.99 pounds</p><button>Add to basket'
                 "</button><p>In stock, dispatched within two working days.</p></div>")
    return (f'<article class="story"><h1>{_esc(article.title)}</h1>'
            f'<p class="byline">By {_esc(article.author)}, {_esc(article.date)}</p>\n{body}\n'
            f'<div class="share">Share this: <a href="#">Email</a> <a href="#">Print</a></div></article>'
            f"{extra}")


def _forum_thread_main(article: _Article) -> str:
    # A thread is the same prose split into posts by different members.
    posts = []
    handles = ["millrace_mick", "sourdough_sue", "wend_walker", "gearcrank", "allotment_al",
               "cloudwatcher", "old_ledger"]
    for i, paragraph in enumerate(article.paragraphs):
        who = article.author.replace(" ", "_").lower() if i == 0 else handles[i % len(handles)]
        posts.append(f'<div class="post" id="post-{i + 1}"><div class="post-meta"><span class="user">'
                     f'{who}</span> <span class="when">{_esc(article.date)}</span></div>'
                     f'<div class="post-body"><p>{_esc(paragraph)}</p></div>'
                     f'<div class="post-actions"><a href="#">Reply</a> <a href="#">Quote</a></div></div>')
    return f'<h1 class="thread-title">{_esc(article.title)}</h1>\n' + "\n".join(posts)


def _html_page(site: _Site, path: str, title: str, main_html: str, kind: str, **document_kwargs) -> DemoPage:
    body = _document(site, title, main_html, **document_kwargs).encode("utf-8")
    return DemoPage(site.host, path, 200, "text/html; charset=utf-8", body, [], kind)


def _article_path(site: _Site, article: _Article, taken: set[str]) -> str:
    slug = _slug(article.title)
    pattern = {_NEWS.host: "/2024/{slug}.html", _BLOG.host: "/posts/{slug}/", _SHOP.host: "/guides/{slug}",
               _FORUM.host: "/t/{slug}"}[site.host]
    path = pattern.format(slug=slug)
    suffix = 2
    while path in taken:  # two articles may draw the same title
        path = pattern.format(slug=f"{slug}-{suffix}")
        suffix += 1
    taken.add(path)
    return path


def _syndicate(paragraphs: list[str], rng: random.Random, source_name: str) -> list[str]:
    """A republished copy: a handful of word swaps and a credit line, as syndication desks do."""
    text = "\n\n".join(paragraphs)
    edits = 0
    for word in rng.sample(sorted(_SYNDICATION_EDITS), len(_SYNDICATION_EDITS)):
        text, n = re.subn(rf"\b{word}\b", _SYNDICATION_EDITS[word], text, count=1)
        edits += n
        if edits >= 4:
            break
    return text.split("\n\n") + [f"This story first appeared on {source_name} and is republished with "
                                 f"permission."]


# --------------------------------------------------------------------------------------------------
# Non-article pages.

def _robots(site: _Site) -> DemoPage:
    body = (f"User-agent: *\nDisallow: /basket/\nDisallow: /login/\nDisallow: /search/\n\n"
            f"Sitemap: http://{site.host}/sitemap.xml\n").encode("ascii")
    return DemoPage(site.host, "/robots.txt", 200, "text/plain; charset=utf-8", body, [], NON_HTML)


def _listing(site: _Site, path: str, heading: str, entries: list[tuple[_Article, str]]) -> DemoPage:
    """An index page: titles, dates and truncated teasers, the link-heavy text a crawl is full of."""
    items = []
    for article, href in entries:
        teaser = " ".join(article.paragraphs[0].split()[:9]) + "..."
        items.append(f'<li class="teaser"><a href="{href}">{_esc(article.title)}</a> '
                     f'<span class="date">{_esc(article.date)}</span><p>{_esc(teaser)}</p></li>')
    main = f'<h1>{_esc(heading)}</h1>\n<ul class="teasers">{"".join(items)}</ul>\n' \
           f'<nav class="pager"><a href="{path}?page=2">Older posts</a></nav>'
    return _html_page(site, path, heading, main, LISTING)


def _tiny_png() -> bytes:
    """A valid 2x2 grey PNG whose zlib stream is one stored (uncompressed) block, so its bytes do not
    depend on the zlib build."""
    raw = b"\x00\x80\x80" * 2  # two scanlines, each a filter byte and two grey pixels
    stored = b"\x01" + struct.pack("<HH", len(raw), len(raw) ^ 0xFFFF) + raw
    idat = b"\x78\x01" + stored + struct.pack(">I", zlib.adler32(raw))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 2, 2, 8, 0, 0, 0, 0)  # 2x2, 8-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


_CSS = """/* The Valley Courier */
body { font-family: Georgia, serif; margin: 0; color: #222; }
.site-header { background: #1d3557; color: #fff; padding: 1rem; }
.menu ul { list-style: none; display: flex; gap: 1rem; }
.layout { display: grid; grid-template-columns: 3fr 1fr; gap: 2rem; max-width: 72rem; margin: auto; }
.cookie-banner { position: fixed; bottom: 0; width: 100%; background: #f1faee; }
.site-footer { font-size: 0.8rem; color: #555; border-top: 1px solid #ccc; }
"""


def _low_quality_pages(rng: random.Random) -> list[DemoPage]:
    """Pages a quality filter exists to drop, each failing a different rule."""
    pages = []
    keywords = ["cheap flour mill", "best grain mill", "buy flour mill online", "flour mill sale",
                "grain mill discount", "electric flour mill", "flour mill uk", "mill for flour cheap"]
    spam = " ".join(rng.choice(keywords) for _ in range(110))
    pages.append(_html_page(_SHOP, "/deals/cheap-flour-mill-best-price", "Cheap flour mill best price",
                            f"<h1>Cheap flour mill best price</h1><p>{_esc(spam)}</p>", LOW_QUALITY))

    products = ["stone burr", "hopper lid", "crank handle", "sieve frame", "flour bin", "dough scraper",
                "proving basket", "bench knife", "oven thermometer", "grain scoop"]
    items = "".join(f"<li>{rng.choice(products)} {n}</li>" for n in range(1, 51))
    pages.append(_html_page(_SHOP, "/catalogue/all-items", "All items",
                            f"<h1>All items</h1><ul class=\"catalogue\">{items}</ul>", LOW_QUALITY))

    tags = ["#bread", "#baking", "#sourdough", "#realbread", "#flour", "#crumbshot", "#homebaker",
            "#breadporn", "#levain", "#bakery", "#instabread", "#foodie"]
    lines = "".join(f"<p>{' '.join(rng.choice(tags) for _ in range(8))}</p>" for _ in range(12))
    pages.append(_html_page(_BLOG, "/posts/todays-bake-tags/", "Today's bake",
                            f"<article><h1>#todaysbake</h1>{lines}</article>", LOW_QUALITY))

    rows = "".join(f"<p>SKU-{rng.randint(1000, 9999)} | {rng.randint(1, 99)}.{rng.randint(10, 99)} | "
                   f"{rng.randint(1, 9)}/{rng.randint(2, 12)} | +/-{rng.randint(1, 9)}% | "
                   f"{rng.randint(100, 999)}-{rng.randint(1000, 9999)} | ***</p>" for _ in range(40))
    pages.append(_html_page(_SHOP, "/prices.html", "Price list", f"<h1>Price list</h1>{rows}", LOW_QUALITY))

    pages.append(_html_page(_FORUM, "/t/new-section-coming-soon", "Coming soon",
                            "<h1>Coming soon</h1><p>This section will open soon.</p>", LOW_QUALITY))
    return pages


def _charset_mismatch_pages(rng: random.Random) -> list[DemoPage]:
    """Two pages whose HTTP charset lies; neither has a <meta charset> to fall back on."""
    pages = []
    for site, path, title, paragraph, declared, actual, topic in (
        (_NEWS, "/2024/a-cafe-on-bridge-street.html", "A café on Bridge Street", _CAFE_PARAGRAPH,
         "utf-8", "cp1252", "history"),
        (_BLOG, "/posts/autumn-walks-programme/", "The autumn walks programme", _WALKS_PARAGRAPH,
         "iso-8859-1", "utf-8", "rivers"),
    ):
        article = _compose_article(rng, topic)
        article.paragraphs.insert(0, paragraph)
        article.title = title
        text = _document(site, title, _article_main(article, site), meta_charset=False)
        pages.append(DemoPage(site.host, path, 200, f"text/html; charset={declared}", text.encode(actual),
                              [], CHARSET_MISMATCH))
    return pages


def _non_english_pages() -> list[DemoPage]:
    pages = []
    for lang, (title, paragraphs) in _FOREIGN_PAGES.items():
        home_label, footer_line = _FOREIGN_CHROME[lang]
        main = f"<article><h1>{_esc(title)}</h1>\n{_paragraphs_html(paragraphs)}</article>"
        pages.append(_html_page(_BLOG, f"/{lang}/{_slug(title)}/", title, main, NON_ENGLISH, lang=lang,
                                home_label=home_label, footer_extra=f"<p>{_esc(footer_line)}</p>"))
    return pages


def _error_pages(redirect_target: str) -> list[DemoPage]:
    pages = []
    for site, path in ((_NEWS, "/2023/11/council-meeting-postponed.html"), (_SHOP, "/guides/old-grinder")):
        main = ("<h1>Page not found</h1><p>Sorry, we could not find that page. Try the search box or go "
                'back to the <a href="/">home page</a>.</p>')
        body = _document(site, "Page not found", main).encode("utf-8")
        pages.append(DemoPage(site.host, path, 404, "text/html; charset=utf-8", body, [], ERROR))
    for site, path, target in ((_BLOG, "/2019/05/old-permalink/", redirect_target),
                               (_NEWS, "/archive/", f"http://{_NEWS.host}/")):
        body = (f'<html><head><title>301 Moved Permanently</title></head><body><h1>Moved Permanently</h1>'
                f'<p>The document has moved <a href="{target}">here</a>.</p></body></html>\n').encode("ascii")
        pages.append(DemoPage(site.host, path, 301, "text/html; charset=iso-8859-1", body,
                              [("Location", target)], ERROR))
    return pages


# --------------------------------------------------------------------------------------------------
# The site model.

def build_demo_site(seed: int = 0) -> list[DemoPage]:
    """Every response of the demo crawl, in crawl order; the same seed always gives the same pages."""
    rng = random.Random(seed)
    pages: list[DemoPage] = [_robots(site) for site in _SITES]

    # Articles, with PII planted in three of them (one per sentence in _PII_SENTENCES).
    articles: dict[str, list[tuple[_Article, str]]] = {}
    article_pages: dict[str, DemoPage] = {}
    taken: set[str] = set()
    pii_slots = {(_BLOG.host, 2): _PII_SENTENCES[0], (_NEWS.host, 5): _PII_SENTENCES[1],
                 (_FORUM.host, 3): _PII_SENTENCES[2]}
    for site in _SITES:
        articles[site.host] = []
        for i in range(_ARTICLES_PER_SITE[site.host]):
            article = _compose_article(rng, rng.choice(site.topics), pii_slots.get((site.host, i)))
            path = _article_path(site, article, taken)
            articles[site.host].append((article, path))
    for site in _SITES:
        own = articles[site.host]
        for i, (article, path) in enumerate(own):
            related = [(a.title, p) for a, p in own[i + 1:i + 5] or own[:4] if p != path]
            page = _html_page(site, path, article.title, _article_main(article, site), ARTICLE,
                              related=related)
            article_pages[page.url] = page
            pages.append(page)

    # Listing pages: one home page per host, plus tag and category pages with a few links each.
    for site in _SITES:
        pages.append(_listing(site, "/", f"Latest from {site.name}", articles[site.host][:8]))
    for tag, start in (("recipes", 0), ("sourdough", 3), ("mills", 6), ("allotment", 9), ("weekend", 12)):
        pages.append(_listing(_BLOG, f"/tags/{tag}/", f"Posts tagged {tag}",
                              articles[_BLOG.host][start:start + 3]))
    for section, start in (("local", 0), ("weather", 5), ("science", 10)):
        pages.append(_listing(_NEWS, f"/{section}/", section.capitalize(),
                              articles[_NEWS.host][start:start + 4]))

    # Syndication: four blog stories republished by the news site with small edits (near duplicates),
    # two republished verbatim (exact text duplicates in other chrome), and one print view that is a
    # byte-for-byte copy under another URL.
    for article, path in articles[_BLOG.host][:4]:
        copy = _Article(article.title, article.author, article.date,
                        _syndicate(article.paragraphs, rng, _BLOG.name))
        pages.append(_html_page(_NEWS, f"/syndicated/{_slug(article.title)}.html", copy.title,
                                _article_main(copy, _NEWS), SYNDICATED))
    for article, path in articles[_NEWS.host][:2]:
        pages.append(_html_page(_BLOG, f"/reprints/{_slug(article.title)}/", article.title,
                                _article_main(article, _BLOG), EXACT_COPY))
    original = article_pages[f"http://{_SHOP.host}{articles[_SHOP.host][0][1]}"]
    pages.append(DemoPage(_SHOP.host, f"/print{original.path}", 200, original.content_type,
                          original.body, [], EXACT_COPY))

    pages.extend(_low_quality_pages(rng))
    pages.extend(_non_english_pages())
    pages.extend(_charset_mismatch_pages(rng))

    # Non-HTML responses a crawler fetches alongside pages.
    pages.append(DemoPage(_NEWS.host, "/static/site.css", 200, "text/css", _CSS.encode("utf-8"), [],
                          NON_HTML))
    pages.append(DemoPage(_SHOP.host, "/static/logo.png", 200, "image/png", _tiny_png(), [],
                          NON_HTML))
    catalogue = [{"sku": f"MS-{100 + i}", "name": name, "price_pence": rng.randint(500, 25000),
                  "in_stock": rng.random() < 0.8}
                 for i, name in enumerate(["Hand grain mill", "Proving basket", "Bench scraper",
                                           "Rye flour 1.5 kg", "Oven stone"])]
    pages.append(DemoPage(_SHOP.host, "/api/products.json", 200, "application/json",
                          json.dumps({"products": catalogue}, indent=2, sort_keys=True).encode("utf-8"),
                          [], NON_HTML))

    pages.extend(_error_pages(redirect_target=f"http://{_BLOG.host}{articles[_BLOG.host][0][1]}"))
    return pages


# --------------------------------------------------------------------------------------------------
# WARC serialization.

def _record_id(seed: int, index: int, rec_type: str, url: str) -> str:
    return f"<urn:uuid:{uuid.uuid5(_RECORD_ID_NAMESPACE, f'{seed}/{index}/{rec_type}/{url}')}>"


def _warc_date(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _payload_digest(body: bytes) -> str:
    """The digest warcio writes as WARC-Payload-Digest, needed to point a revisit at its original."""
    return "sha1:" + base64.b32encode(hashlib.sha1(body).digest()).decode("ascii")


def _response_headers(page: DemoPage, moment: dt.datetime) -> StatusAndHeaders:
    reason = http.HTTPStatus(page.status).phrase
    headers = [("Date", email.utils.format_datetime(moment, usegmt=True)), ("Server", "demo-web/1.0"),
               ("Content-Type", page.content_type), ("Content-Length", str(len(page.body))),
               *page.headers]
    return StatusAndHeaders(f"{page.status} {reason}", headers, protocol="HTTP/1.1")


def write_demo_warc(path: str | os.PathLike, seed: int = 0, pages: list[DemoPage] | None = None) -> dict:
    """Write the demo crawl as a gzipped WARC/1.1 and return record counts.

    Layout: one warcinfo record, then per page a request, its response and a metadata record, then
    revisit records for two pages fetched again unchanged. Bytes are identical across runs: dates come
    from CRAWL_START, record ids are uuid5 of (seed, index, type, URL), and warcio compresses each
    record as its own gzip member through zlib, whose gzip header carries mtime 0 (no clock).
    """
    pages = build_demo_site(seed) if pages is None else pages
    counts = {"records": 0, "warcinfo": 0, "request": 0, "response": 0, "metadata": 0, "revisit": 0,
              "html_responses": 0}
    buffer = io.BytesIO()
    writer = WARCWriter(buffer, gzip=True, warc_version="1.1")

    def write(record) -> None:
        writer.write_record(record)
        counts["records"] += 1
        counts[record.rec_type] += 1

    # No WARC-Filename: it would make the bytes depend on where the file is written.
    info = (f"software: gristmill demo_web\r\nformat: WARC File Format 1.1\r\n"
            f"description: gristmill embedded demo crawl, seed {seed}\r\nisPartOf: gristmill-demo-web\r\n"
            f"robots: obey\r\n").encode("utf-8")
    write(writer.create_warc_record(
        "", "warcinfo", payload=io.BytesIO(info), length=len(info),
        warc_content_type="application/warc-fields",
        warc_headers_dict={"WARC-Record-ID": _record_id(seed, -1, "warcinfo", ""),
                           "WARC-Date": _warc_date(CRAWL_START)}))

    fetched: dict[str, tuple[str, str]] = {}  # url -> (response record id, WARC-Date)
    for index, page in enumerate(pages):
        moment = CRAWL_START + dt.timedelta(seconds=index)
        date = _warc_date(moment)
        response_id = _record_id(seed, index, "response", page.url)
        request_headers = StatusAndHeaders(
            f"GET {page.path} HTTP/1.1",
            [("Host", page.host), ("User-Agent", _USER_AGENT), ("Accept", "*/*"), ("Connection", "close")],
            is_http_request=True)
        write(writer.create_warc_record(
            page.url, "request", http_headers=request_headers,
            warc_headers_dict={"WARC-Record-ID": _record_id(seed, index, "request", page.url),
                               "WARC-Date": date, "WARC-Concurrent-To": response_id}))
        write(writer.create_warc_record(
            page.url, "response", payload=io.BytesIO(page.body), length=len(page.body),
            http_headers=_response_headers(page, moment),
            warc_headers_dict={"WARC-Record-ID": response_id, "WARC-Date": date}))
        counts["html_responses"] += page.status == 200 and page.content_type.startswith("text/html")
        fetched[page.url] = (response_id, date)

        # Crawl metadata beside each response, as Common Crawl writes it.
        fields = (f"fetchTimeMs: {37 + (index * 53) % 400}\r\n"
                  f"outlinks: {page.body.count(b'<a ')}\r\n").encode("ascii")
        write(writer.create_warc_record(
            page.url, "metadata", payload=io.BytesIO(fields), length=len(fields),
            warc_content_type="application/warc-fields",
            warc_headers_dict={"WARC-Record-ID": _record_id(seed, index, "metadata", page.url),
                               "WARC-Date": date, "WARC-Concurrent-To": response_id}))

    # A second visit to two articles found them unchanged: revisit records, headers only, no payload.
    revisited = [p for p in pages if p.kind == ARTICLE][:2]
    for k, page in enumerate(revisited):
        index = len(pages) + k
        moment = CRAWL_START + dt.timedelta(days=1, seconds=k)
        original_id, original_date = fetched[page.url]
        write(writer.create_revisit_record(
            page.url, _payload_digest(page.body), page.url, original_date,
            http_headers=_response_headers(page, moment),
            warc_headers_dict={"WARC-Record-ID": _record_id(seed, index, "revisit", page.url),
                               "WARC-Date": _warc_date(moment), "WARC-Refers-To": original_id}))

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write then rename, so a reader never sees half a file.
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(buffer.getvalue())
    partial.replace(path)
    counts["bytes"] = path.stat().st_size
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write gristmill's embedded demo crawl as a WARC.gz.")
    parser.add_argument("out", help="output path, e.g. jobs/data/demo-web.warc.gz")
    parser.add_argument("--seed", type=int, default=0, help="site seed (the shipped file uses 0)")
    args = parser.parse_args(argv)
    print(json.dumps(write_demo_warc(args.out, seed=args.seed), indent=2))


if __name__ == "__main__":
    main()
