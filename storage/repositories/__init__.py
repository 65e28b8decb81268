"""One repository per aggregate; plain synchronous classes over one Database."""
