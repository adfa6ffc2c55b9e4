"""The option matrix a security-key relying party may ask for (EU Login does not publish its
options, so the tests cover the whole envelope), who runs each cell, and what the relying party
must see.

A cell is one registration with one set of options (userVerification, residentKey,
attestation, pubKeyCredParams; authenticatorAttachment is always cross-platform), then the
sign-ins it allows: with allowCredentials naming the new credential ("login"), and with
allowCredentials empty ("discover", for a discoverable credential). userVerification is the
same for the registration and the sign-ins. Each cell has an RP ID of its own, cNN.rp.localhost,
so no two cells' discoverable credentials meet in one account list; all are one site
(rp.localhost), so a browser goes from cell to cell in one tab and one renderer process, as
on a site's subdomains (a new site's renderer costs a headed Chromium ~10 s under TCG).

The key starts without a PIN. The cells run in this order, and the PIN is set in the middle by
the browser itself, as a person does it (Chrome's "Create a PIN" sheet):

1. No PIN, userVerification preferred/discouraged, residentKey preferred/discouraged
   (16 cells): chromium-headless-shell, which makes a non-discoverable credential for
   residentKey preferred (it has no resident-key support at all). The residentKey discouraged
   ones (8) again in chromium --headless=new, Chrome's real dialog flow.
2. No PIN, residentKey required/preferred, userVerification preferred/discouraged (16 cells):
   Firefox, which makes the discoverable credential without a PIN; and the 4 of them that
   python-fido2's Fido2Client accepts (residentKey required, userVerification discouraged: for
   preferred it refuses, "User verification not configured"). Not Chromium: its full browser
   will not make a discoverable credential (required, or preferred, which it tries) on a key
   without a PIN and first asks the person to create one (kClientPinSetup), which would make it
   a PIN cell; headless-shell refuses residentKey required outright (NotSupportedError:
   "Resident credentials ... not supported").
3. No PIN, userVerification required (1 cell): a key without a PIN cannot verify anyone, so
   Chromium on Xvfb asks for a new PIN, xdotool types it, and the key has a PIN from here on.
   The other 11 combinations of "no PIN, userVerification required" are the same ceremony
   with the same outcome (the browser sets the PIN first) and are not separate cells: after
   the first, the key has a PIN, and they are the cells of group 4.
4. PIN set (18 cells): Chromium on Xvfb. Every userVerification x residentKey pair, each with
   two of the four attestation x pubKeyCredParams combinations, alternating, so that every pair
   of option values still meets in some cell (pairwise coverage); groups 1 and 2 run the full
   product without a PIN. A PIN cell takes Chromium's UI about 15 s under TCG, and all 36
   would add 4-5 minutes to CI for no pair of values not already covered. xdotool types the
   PIN whenever Chromium shows its PIN sheet and presses Enter on its account list. headless-shell has no PIN support at all and
   --headless=new stops at the PIN sheet with no way to answer it, so Xvfb is the only way
   here. Firefox is not used for PIN cells: its PIN prompt is browser chrome that neither
   Marionette nor its WebDriver commands can answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

ES256, EDDSA, RS256 = -7, -8, -257
ALG_LISTS = {"es256-rs256": (ES256, RS256), "eddsa-es256": (EDDSA, ES256)}
REQUIREMENTS = ("required", "preferred", "discouraged")
PIN = "246810"


@dataclass(frozen=True)
class Cell:
    index: int
    pin: bool  # whether a PIN is set on the key when the cell runs
    uv: str  # userVerification, for the registration and the sign-ins
    rk: str  # residentKey
    attestation: str  # none | direct
    algs: str  # a key of ALG_LISTS
    clients: tuple[str, ...]  # who runs it: headless-shell, headless-new, xvfb, firefox, python-fido2

    @property
    def name(self) -> str:
        return "-".join(
            ["pin" if self.pin else "nopin", "uv" + self.uv[:4], "rk" + self.rk[:4], self.attestation, self.algs]
        )

    @property
    def rp_id(self) -> str:
        return f"c{self.index:02d}.rp.localhost"

    @property
    def alg_list(self) -> tuple[int, ...]:
        return ALG_LISTS[self.algs]

    def needs_pin_entry(self, step: str) -> bool:
        """Whether the platform must ask the person for the PIN (the key has no other UV)."""
        if not self.pin:
            return False
        if self.uv in ("required", "preferred"):
            return True
        # userVerification discouraged: a non-discoverable credential needs no PIN
        # (makeCredUvNotRqd), a discoverable one does (CTAP 2.1 §6.1.2 step 7), and so does a
        # sign-in without allowCredentials: Chromium (the only client of the PIN cells)
        # registers every discoverable credential with credProtect 2
        # (userVerificationOptionalWithCredentialIDList, seen in its FIDO log), and the key
        # must not reveal such a credential to a discovery without UV (CTAP 2.1 §12.1), so
        # Chromium collects the PIN. A sign-in with allowCredentials never needs it.
        return (step == "register" and self.rk == "required") or step == "discover"

    def expected_uv(self, step: str) -> bool | None:
        """The UV flag the relying party must see; None where the client may choose."""
        if self.uv == "required":
            return True
        if not self.pin:
            return False  # nothing can verify the user: no PIN, no built-in UV
        if self.needs_pin_entry(step):
            return True
        if self.uv == "discouraged" and step == "register" and self.rk == "preferred":
            return None  # the client decides whether it asks for a discoverable credential
        return False


def _clients(pin: bool, uv: str, rk: str) -> tuple[str, ...]:
    if pin or uv == "required":
        return ("xvfb",)
    if rk == "discouraged":
        return ("headless-shell", "headless-new")
    if rk == "preferred":
        return ("headless-shell", "firefox")
    if uv == "discouraged":
        return ("firefox", "python-fido2")
    return ("firefox",)


def _pairwise_pick(uv: str, rk: str, att: str, algs: str) -> bool:
    """Half of the attestation x algorithm combinations for each uv x rk pair: (none, first
    list) and (direct, second list), or the other two, alternating between neighbouring pairs
    (uv preferred with rk preferred, the EU Login walkthrough's cell, gets direct with ES256)."""
    flip = (REQUIREMENTS.index(uv) + REQUIREMENTS.index(rk)) % 2
    return ((att == "none") == (algs == "es256-rs256")) == bool(flip)


def _all_cells() -> list[Cell]:
    cells = []
    for pin, uv, rk, att, algs in product((False, True), REQUIREMENTS, REQUIREMENTS, ("none", "direct"), ALG_LISTS):
        if not pin and uv == "required" and (rk, att, algs) != ("required", "direct", "eddsa-es256"):
            continue  # see 3. above: one cell sets the PIN, the rest are group 4's cells
        if pin and not _pairwise_pick(uv, rk, att, algs):
            continue  # see 4. above
        cells.append(Cell(len(cells), pin, uv, rk, att, algs, _clients(pin, uv, rk)))
    return cells


CELLS = _all_cells()
