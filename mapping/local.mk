# filled by the mapping issue
