"""Word banks the demo draws names, titles and synopses from. All invented or generic."""

from __future__ import annotations


def _split(text: str) -> tuple[str, ...]:
    """The comma-separated items of ``text``, each with its spaces and line breaks collapsed."""
    return tuple(" ".join(item.split()) for item in text.split(",") if item.strip())


FIRST_NAMES = _split(
    """
    Ada, Alan, Amara, Andre, Anika, Ben, Bianca, Carlos, Chen, Chloe, Dana, Darius, Elena, Eli,
    Emeka, Farah, Felix, Grace, Hana, Hugo, Imani, Isaac, Jade, Jonah, Kai, Kavya, Lena, Leo,
    Lucia, Malik, Maya, Mateo, Nadia, Noah, Olga, Omar, Priya, Quinn, Rafael, Rosa, Sam, Sana,
    Theo, Tessa, Uma, Victor, Wen, Xavier, Yara, Zoe, Ivy, Jasper, Kira, Luca, Mira, Nico, Ines,
    Owen, Petra, Ravi
    """
)

LAST_NAMES = _split(
    """
    Abbott, Alvarez, Banerjee, Becker, Brooks, Castillo, Chang, Novak, Dubois, Ellison, Fischer,
    Flores, Garcia, Gupta, Hale, Haddad, Ivanova, Jensen, Kaur, Keller, Kim, Larsen, Lopez,
    Mbeki, Mendes, Moreau, Nakamura, Nguyen, Okafor, Olsen, Park, Patel, Quinlan, Ramos, Reyes,
    Rossi, Sato, Schmidt, Silva, Singh, Sorensen, Tanaka, Torres, Usman, Varga, Walsh, Weber,
    Xu, Yilmaz, Young, Zhang, Ziegler, Hart, Bishop
    """
)

GENRES = _split(
    """
    Action, Adventure, Animation, Comedy, Crime, Documentary, Drama, Family, Fantasy, Horror,
    Musical, Mystery, Romance, Science Fiction, Thriller
    """
)

# Genres that often come together, to draw a movie's second and third genre from.
COMPANION_GENRES = {
    "Action": ("Adventure", "Thriller", "Science Fiction", "Crime"),
    "Adventure": ("Action", "Fantasy", "Family", "Comedy"),
    "Animation": ("Family", "Comedy", "Adventure", "Fantasy"),
    "Comedy": ("Romance", "Family", "Drama", "Crime"),
    "Crime": ("Drama", "Thriller", "Mystery", "Action"),
    "Documentary": ("Drama", "Musical"),
    "Drama": ("Romance", "Crime", "Mystery", "Comedy"),
    "Family": ("Animation", "Comedy", "Adventure", "Musical"),
    "Fantasy": ("Adventure", "Action", "Family", "Romance"),
    "Horror": ("Thriller", "Mystery", "Science Fiction"),
    "Musical": ("Romance", "Comedy", "Drama", "Family"),
    "Mystery": ("Thriller", "Crime", "Drama", "Horror"),
    "Romance": ("Comedy", "Drama", "Musical"),
    "Science Fiction": ("Action", "Adventure", "Thriller", "Horror"),
    "Thriller": ("Crime", "Mystery", "Action", "Horror"),
}

# Certificates each primary genre is usually rated with.
CERTIFICATES = {
    "Action": ("PG-13", "PG-13", "R"),
    "Adventure": ("PG", "PG-13", "PG-13"),
    "Animation": ("G", "PG", "PG"),
    "Comedy": ("PG-13", "R", "PG"),
    "Crime": ("R", "R", "PG-13"),
    "Documentary": ("G", "PG", "PG-13"),
    "Drama": ("PG-13", "R", "PG"),
    "Family": ("G", "G", "PG"),
    "Fantasy": ("PG", "PG-13", "PG-13"),
    "Horror": ("R", "R", "PG-13"),
    "Musical": ("G", "PG", "PG-13"),
    "Mystery": ("PG-13", "R", "PG-13"),
    "Romance": ("PG-13", "PG", "R"),
    "Science Fiction": ("PG-13", "PG-13", "R"),
    "Thriller": ("R", "PG-13", "R"),
}

LANGUAGES = (
    ("English", 80),
    ("Spanish", 6),
    ("French", 3),
    ("Hindi", 3),
    ("Japanese", 3),
    ("Korean", 3),
    ("Mandarin", 2),
)

ADJECTIVES = _split(
    """
    Silent, Crimson, Broken, Hidden, Endless, Golden, Midnight, Frozen, Last, Burning, Wild,
    Lost, Electric, Quiet, Iron, Velvet, Hollow, Shattered, Distant, Savage, Gentle, Restless,
    Secret, Neon, Paper, Glass, Northern
    """
)

NOUNS = _split(
    """
    Horizon, Kingdom, Signal, Harbor, Garden, Empire, Echo, Frontier, River, Machine, Crown,
    Storm, Orchard, Station, Lantern, Voyage, Circuit, Tide, Mirror, Summit, Labyrinth, Parade,
    Comet, Fortress, Whisper, Compass, Carnival, Outpost, Masquerade, Lighthouse
    """
)

PLACES = _split(
    """
    Avalon, the Deep, Ember Falls, Cold Harbor, the North, Marrow Creek, Tomorrow, Saltwater,
    the Red Desert, Juniper Bay, Old Town, the Stars, Kestrel Island
    """
)

TITLE_TEMPLATES = _split(
    """
    The {adj} {noun}, {noun} of {place}, {adj} {noun}, Return to {place}, The Last {noun},
    {first}'s {noun}, Beyond the {noun}, A {adj} Summer, Escape from {place}, {noun} Rising, The
    {noun} Protocol, Letters from {place}, Under the {adj} Sky, {adj} Hearts, Night at the
    {noun}
    """
)

ROLES = {
    "Action": ("a retired agent", "a getaway driver", "an elite pilot", "a bodyguard"),
    "Adventure": ("a young explorer", "a treasure hunter", "a disgraced captain"),
    "Animation": ("a curious fox", "a small robot", "a lonely dragon", "a brave mouse"),
    "Comedy": ("a failing wedding planner", "an overconfident chef", "two rival neighbors"),
    "Crime": ("a weary detective", "a safecracker", "a small-town sheriff"),
    "Documentary": ("a team of scientists", "a veteran climber", "a community choir"),
    "Drama": ("a widowed teacher", "an estranged daughter", "a struggling musician"),
    "Family": ("three siblings", "a determined grandmother", "a clumsy inventor"),
    "Fantasy": ("an apprentice mage", "an exiled princess", "a reluctant knight"),
    "Horror": ("a night-shift nurse", "a group of students", "a new homeowner"),
    "Musical": ("a street dancer", "a small-town singer", "a touring band"),
    "Mystery": ("an amateur sleuth", "a crossword editor", "a museum archivist"),
    "Romance": ("a bookshop owner", "a ferry captain", "a jaded journalist"),
    "Science Fiction": ("a station engineer", "a colony medic", "a time-lost pilot"),
    "Thriller": ("a whistleblower", "a hostage negotiator", "a forensic accountant"),
}

GOALS = {
    "Action": ("stop a stolen warhead from leaving the city", "pull off one last rescue"),
    "Adventure": ("find a map that leads off every chart", "cross a frozen continent"),
    "Animation": ("find the way home before winter", "save the forest festival"),
    "Comedy": ("survive a week of family holidays", "win a cooking contest they never entered"),
    "Crime": ("solve a murder nobody reported", "pay back a debt to the wrong people"),
    "Documentary": ("follow a season that changes everything", "record a vanishing tradition"),
    "Drama": ("make peace with the past", "keep the family farm alive"),
    "Family": ("rescue the town's beloved carousel", "win back the school science fair"),
    "Fantasy": ("return a cursed crown to its grave", "unite three quarrelling kingdoms"),
    "Horror": ("survive the longest night of the year", "learn what lives under the floor"),
    "Musical": ("put on the show of a lifetime", "win the city's last talent contest"),
    "Mystery": ("decode a message hidden in old letters", "find who vanished from a locked room"),
    "Romance": ("choose between two lives", "find a stranger from a missed train"),
    "Science Fiction": ("repair a failing star drive", "warn Earth before the signal arrives"),
    "Thriller": ("expose a conspiracy before it buries them", "outwit a patient killer"),
}

TWISTS = _split(
    """
    Nothing is what it seems., Time is running out., The past will not stay buried., Some doors
    should stay closed., Every choice has a price., Friendship will be tested., The truth is
    closer than anyone thinks., A journey of the heart as much as the road., Hope is the last
    thing to go.
    """
)

THEATER_WORDS = _split(
    """
    Starlight, Bijou, Majestic, Orpheum, Roxy, Rialto, Lumiere, Aurora, Capitol, Paragon, Astra,
    Marquee, Silver Screen, Nickelodeon, Vista
    """
)

DISTRICTS = _split(
    """
    Midtown, Uptown, Downtown, Riverside, Harborview, Old Town, Northgate, Lakeside, Parkview,
    Eastside, Westgate, Southpoint, Hillcrest, Mill District, Union Square, Station Plaza,
    Garden Row, Market Street
    """
)

STREETS = _split(
    """
    Main, Oak, Maple, Cedar, Elm, Pine, Washington, Lake, Hill, Park, River, Broad, Market,
    Union, Mill, Church, Spring, Ridge
    """
)

STREET_KINDS = _split(
    """
    St, Ave, Blvd, Rd, Way, Pkwy
    """
)
