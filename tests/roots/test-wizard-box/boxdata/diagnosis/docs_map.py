LABELS = {
    "box-home": ("index", "Wizard box test"),
    "box-signals": ("index", "Signals"),
    "box-memory": ("index", "Memory"),
    "wizard": ("wizard", "The wizard"),
}
