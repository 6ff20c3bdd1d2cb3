"""People: households and their registrations (BRP), and who actually lives where.

Every dwelling has a sequence of tenancies (one household after another, with
short vacancies). Some new households are households that moved within the
municipality (a *chain* of tenancies), and some are young adults who left their
parents' household, so person ids recur at several addresses. Households grow
by births and shrink as partners, children and room-mates leave.

The planted mechanisms add people: phantom registrations (address fraud),
tenants of rented-out rooms, extra families (overcrowding) and agency workers
moved between one landlord's dwellings (exploitation); many of them never
register. What people *use* (water, energy) follows who actually lives there
(the presence intervals of :class:`People`); what the register *shows* follows the
registrations.
"""

from stratum_ml.synthetic.population._common import YEAR
from stratum_ml.synthetic.population._simulate import People, simulate_people

__all__ = ["YEAR", "People", "simulate_people"]
