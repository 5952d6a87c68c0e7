"""scripts/package_photos: reading GCompris's credits, whose README blocks come in two shapes."""
from scripts.package_photos import credits

README = """Copyright: Daniel Schwen
License: CC-BY-SA 4.0
Source: https://commons.wikimedia.org/wiki/File:Chichen_Itza_3.jpg
Files:
wonders/chichenItza.webp

Copyright: 2000, 2008 Bruno Coudoin and others
License: CC-BY 4.0
EilanDonanCastle_0.webp
EilanDonanCastle_background.webp
Comment: based on a photo by Guillaume Piolle, license CC-BY 3.0, source at https://example.org/Eilean_Donan.jpg

Copyright: Someone
License: CC0-1.0
Files: a.webp b.webp
"""


def test_credits_read_blocks_with_and_without_a_files_line():
    c = credits(README)
    assert c["wonders/chichenItza.webp"]["Source"].endswith("Chichen_Itza_3.jpg")
    assert c["wonders/chichenItza.webp"]["Copyright"] == "Daniel Schwen"
    # a block that lists its files straight after the licence, and names its photo in a comment
    castle = c["EilanDonanCastle_background.webp"]
    assert castle["License"] == "CC-BY 4.0" and "Guillaume Piolle" in castle["Comment"] and "Source" not in castle
    assert c["EilanDonanCastle_0.webp"] is castle
    assert c["a.webp"]["License"] == c["b.webp"]["License"] == "CC0-1.0"
