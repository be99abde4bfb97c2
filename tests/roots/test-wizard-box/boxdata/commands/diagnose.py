EXIT_CODES = {0: "nothing wrong was found", 1: "a problem was found", 2: "usage error"}
