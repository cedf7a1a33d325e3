"""What reports are made of, below the engine that writes them: parameter and MAC counts
(``flops``), text and Markdown tables (``tables``), matplotlib figures written to files
(``plots``). Imports nothing of actionrec."""
