"""What the numbers become: tables as text and files, the cost table, plots, the HTML report, the Hub's formats
and the upload. May import the base modules, registry/, record/ and aggregate/."""
