"""The application's commands, one module per concern, composed into
``domain.application.AccordApplication``; ``core`` is what they share."""
