import argparse
import sys


def main():
    parser = argparse.ArgumentParser(prog="boxdata")
    parser.add_argument("--exit", type=int, default=0)
    args = parser.parse_args()
    print("boxdata ran")
    sys.exit(args.exit)
