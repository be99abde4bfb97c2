MAIN = "boxdata.commands.diagnose"
COMMANDS = {}
