"""The optional language model: one budgeted, traced call (`client`), and what it is used for."""
