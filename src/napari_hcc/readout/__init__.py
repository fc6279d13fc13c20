"""The response readout: tumor features, composition and the rat's earlier sessions read by the stored
readout (no fitting code), its fitting, and a model built with one."""
