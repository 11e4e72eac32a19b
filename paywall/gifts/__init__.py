"""Gift links: a subscriber shares one article with anyone, for a while (the NYT's gift
articles). Signed links, a monthly allowance per giver, a cap on readers per link."""
